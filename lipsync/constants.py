"""Constants shared by the engine's modules, defined once."""

SAMPLE_RATE = 16000     # Hz: every analysis works on mono audio at this rate
# The one silence rule (lipsync.media.is_silent): audio is silent when it is shorter than
# MIN_AUDIO_SECONDS or its loudest 50 ms window is below SILENCE_DB (RMS, dBFS).
SILENCE_DB = -55.0
MIN_AUDIO_SECONDS = 0.1


def thread_budget() -> int:
    """CPU threads this process may use for one render (0: no limit, the libraries' own
    defaults).  LIPSYNC_THREADS is set per worker when several render workers share a host,
    so that N workers do not each start a thread per core."""
    import os

    try:
        return max(0, int(os.environ.get("LIPSYNC_THREADS", "0") or 0))
    except ValueError:
        return 0


def worker_thread_env(workers: int) -> dict[str, str]:
    """Environment for each of `workers` render processes sharing this host: an equal share of
    the cores as each one's thread budget (the encoder, Whisper, OpenCV and BLAS read it)."""
    import os

    share = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    return {"LIPSYNC_THREADS": share, "OMP_NUM_THREADS": share, "OPENBLAS_NUM_THREADS": share}
