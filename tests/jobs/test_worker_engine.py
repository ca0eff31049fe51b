"""The worker loads the engine named in settings, with the checkpoint setting when it has one."""
import torch

from jobs import worker


def test_worker_loads_the_configured_engine_with_its_checkpoint(settings, tmp_path):
    from lipsync.engines.wav2lip_model import Wav2Lip

    torch.manual_seed(0)
    path = tmp_path / "wav2lip_gan.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in Wav2Lip().state_dict().items()}}, path)
    settings.LIPSYNC_ENGINE, settings.LIPSYNC_CHECKPOINT = "wav2lip", str(path)
    worker._engines.clear()
    try:
        engine = worker.engine_get("cpu")
        assert engine.name == "wav2lip" and engine.device == "cpu"
        assert worker.engine_get("cpu") is engine  # resident: loaded once per process
    finally:
        worker._engines.clear()


def test_worker_default_engine_needs_no_checkpoint(settings):
    settings.LIPSYNC_ENGINE, settings.LIPSYNC_CHECKPOINT = "default", ""
    worker._engines.clear()
    try:
        assert worker.engine_get("cpu").name == "default"
    finally:
        worker._engines.clear()
