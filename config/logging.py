"""Log formatting: structured (JSON-lines) records for production, and the filter that keeps
secrets out of every log line (Django's, the workers', uvicorn's access log)."""
import json
import logging
import re

# Paths whose next segment is a secret: share links, invitations, allauth's e-mail confirmation
# and password-reset keys. API keys ("mp_…") wherever they appear.
_SECRET_PATH = re.compile(r"(/(?:s|invitations|accounts/confirm-email|accounts/password/reset/key)/)([^/\s\"'?#<>]{6,})")
_API_KEY = re.compile(r"\bmp_[A-Za-z0-9_\-]{20,}")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _API_KEY.sub("mp_" + REDACTED, _SECRET_PATH.sub(r"\1" + REDACTED, text))


class RedactSecrets(logging.Filter):
    """On every handler: the record's message (and traceback) with secrets replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is still logged as it is
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class ClosedSocketWrites(logging.Filter):
    """Drops asyncio's "socket.send() raised exception." records. asyncio logs one for every
    write to a connection it already knows is lost, before the protocol hears about it; after a
    websocket client vanishes, each event still fanned out to it in that moment (and there are
    many on a busy batch) would be a warning. The disconnect itself is handled: uvicorn tells the
    consumer, which leaves its group."""

    MESSAGE = "socket.send() raised exception."

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "asyncio" and record.msg == self.MESSAGE)
