"""Worker glue: one render run end to end on a render worker (engine, progress, cancel,
heartbeat, the team's render log), and the shared audio analysis cache."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils.translation import gettext as _

from config.storage import media_local_path, media_store_file
from jobs import progress
from jobs.models import Job, Render
from jobs.services.batches import _render_dir_relative, _render_log_relative
from jobs.services.common import _error_message, _media_path
from jobs.services.renders import (
    render_fail,
    render_finish,
    render_mark_cancelled,
    render_requeue,
    render_retry_pending,
    render_start,
)

log = logging.getLogger(__name__)


def render_execute(*, render_id, rq_job_id: str, engine_provider, worker_name: str = "",
                   stop_requested=lambda: False) -> str:
    """Run one render end to end on this worker. Returns "done" / "failed" / "cancelled" /
    "requeued" / "skipped"; raises (for RQ's retry with backoff) on an infrastructure error
    while attempts remain."""
    from lipsync.errors import BadInputError, RenderCancelled

    render = render_start(render_id=render_id, rq_job_id=rq_job_id, worker_name=worker_name)
    if render is None:
        log.info("render %s: not claimable by %s (cancelled, finished or stale); skipped", render_id, rq_job_id)
        return "skipped"
    render_logger, handler = _render_log_open(render)
    cancel = progress.CancelPoll(render.pk, stop_requested=stop_requested)
    try:
        with progress.Heartbeat(render.pk):
            render_logger.info("attempt %d on worker %s (RQ job %s)", render.attempts, worker_name, rq_job_id)
            result = _render_with_engine(render, engine_provider=engine_provider, cancel=cancel, render_logger=render_logger)
        render_finish(render=render, result=result)
        render_logger.info("done: %s (%.2f s, %d frames)", render.output.name, result.duration, result.frames)
        return "done"
    except RenderCancelled:
        if stop_requested() and not progress.cancel_flag_is_set(render.pk):
            render_logger.info("worker shutting down: render goes back to the queue")
            render_requeue(render=render, count_attempt=False)
            return "requeued"
        render_logger.info("cancelled")
        render_mark_cancelled(render=render)
        return "cancelled"
    except BadInputError as e:
        render_logger.info("failed (%s): %s", e.code, e)
        render_fail(render=render, code=e.code, message=_error_message(e))
        return "failed"
    except Exception as e:
        # The team's log gets the attempt and the stage; the traceback (code, server paths)
        # goes to the server log only (TeamLogFormatter drops it from the team's file).
        render_logger.exception("attempt %d failed%s because of a server problem (%s); the details are in the server log",
                                render.attempts, f" while {render.stage}" if render.stage else "", type(e).__name__)
        from rq.timeouts import JobTimeoutException

        timed_out = isinstance(e, JobTimeoutException)
        code = "timeout" if timed_out else "internal"
        if render.attempts >= settings.RENDER_MAX_ATTEMPTS:
            message = (_("The render took longer than its time limit, %(n)d times.") if timed_out
                       else _("The render failed because of a server problem, %(n)d times. Try again later or contact support."))
            render_fail(render=render, code=code, message=message % {"n": render.attempts})
            return "failed"
        render_retry_pending(render=render, code=code)
        raise
    finally:
        render_logger.logger.removeHandler(handler)
        handler.close()
        _render_log_store(render)


def _render_with_engine(render: Render, *, engine_provider, cancel, render_logger):
    from lipsync.errors import BadInputError, RenderCancelled
    from lipsync.prepare import prepare_template

    template = render.template
    if template is None or not template.file or not template.file.name or not template.file.storage.exists(template.file.name):
        raise BadInputError(_("The template video of this render was deleted."))
    reporter = progress.ProgressReporter(render)
    prepared = prepare_template(str(media_local_path(template.file)), progress=reporter, cancelled=cancel)
    if cancel():
        raise RenderCancelled()
    audio = audio_analysis_get(job=render.job)
    render_logger.info("audio analysed (sha256 %s, %.2f s)", render.job.audio_sha256[:12], audio.duration)
    engine = engine_provider()
    out_dir = _media_path(_render_dir_relative(render.job))
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / f"{render.pk}.mp4"
    from lipsync.atomic import stale_temp_paths

    for stale in stale_temp_paths(out_path):  # a killed earlier attempt's half-written output
        stale.unlink(missing_ok=True)
    # The original recording is muxed at 48 kHz (the analysis copy is 16 kHz, band-limited).
    return engine.render(prepared, audio, str(out_path), progress=reporter, cancelled=cancel,
                         audio_source=str(media_local_path(render.job.audio)))


class TeamLogFormatter(logging.Formatter):
    """The render log the team reads (viewers included): messages only, never a traceback,
    which shows code and server paths. The record keeps its traceback for the server log."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        return self.formatMessage(record)


def _render_log_open(render: Render):
    """A per-render log file the team can read (appended across attempts, which may run on
    other hosts: with remote storage the stored log is fetched first and stored again after)."""
    name = render.log_path or _render_log_relative(render.job, render.pk)
    path = _media_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() and default_storage.exists(name):
        with default_storage.open(name, "rb") as src, open(path, "wb") as out:
            shutil.copyfileobj(src, out)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(TeamLogFormatter("%(asctime)s %(levelname)s %(message)s"))
    # One adapter over a shared logger: loggers are never freed, so one per render would grow a
    # long-lived worker; the handler only takes this render's records.
    rid = str(render.pk)

    def this_render_only(record: logging.LogRecord) -> bool:
        return getattr(record, "render_id", None) == rid

    handler.addFilter(this_render_only)
    base = logging.getLogger("jobs.render")
    base.setLevel(logging.INFO)
    base.addHandler(handler)
    render_logger = logging.LoggerAdapter(base, {"render_id": str(render.pk)})
    if not render.log_path:
        render.log_path = _render_log_relative(render.job, render.pk)
        Render.objects.filter(pk=render.pk).update(log_path=render.log_path)
    return render_logger, handler


def _render_log_store(render: Render) -> None:
    if not render.log_path:
        return
    try:
        media_store_file(local_path=_media_path(render.log_path), name=render.log_path, overwrite=True)
    except Exception:  # a lost log must not turn a finished render into a failed one
        log.warning("could not store the log of render %s", render.pk, exc_info=True)


def audio_analysis_path(sha256: str) -> Path:
    return Path(settings.MEDIA_ROOT) / "cache" / "audio" / f"{sha256}.npz"


AUDIO_ANALYSES_KEY = "mp:stats:audio-analyses"


def audio_analysis_get(*, job: Job):
    """The job's analysed audio, computed once per audio (keyed by sha256) and shared by every
    render and worker: a Redis lock makes concurrent workers wait for the first one."""
    from lipsync.audio import AnalysedAudio, analyse_audio

    path = audio_analysis_path(job.audio_sha256)

    def load():
        if path.exists():
            try:
                return AnalysedAudio.load(path)
            except Exception:
                log.warning("unreadable audio analysis cache %s; analysing again", path, exc_info=True)
        return None

    cached = load()
    if cached is not None:
        return cached
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = progress.redis()
    with conn.lock(f"mp:audio-lock:{job.audio_sha256}", timeout=900, blocking_timeout=1800):
        cached = load()
        if cached is not None:
            return cached
        audio = analyse_audio(str(media_local_path(job.audio)))
        audio.save(path)
        conn.incr(AUDIO_ANALYSES_KEY)
        return audio

