"""The pluggable engines and model loaders, with small random weights made here."""

import os

import numpy as np
import pytest

from lipsync.engines import available_engines, load_engine
from lipsync.errors import LipsyncError
from lipsync.probing import probe


def test_registry():
    assert {"default", "wav2lip"} <= set(available_engines())
    with pytest.raises(ValueError):
        load_engine("nope")


@pytest.fixture(scope="module")
def wav2lip_net():
    torch = pytest.importorskip("torch")
    from lipsync.engines.wav2lip_model import Wav2Lip

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    # on 2 cores, torch's 2 OpenMP threads are ~6x slower than one for these small convs
    torch.set_num_threads(1)
    yield Wav2Lip().eval()
    torch.set_num_threads(threads)


def test_wav2lip_shapes_and_checkpoint_loading(tmp_path, wav2lip_net):
    import torch

    from lipsync.engines.wav2lip_model import load_wav2lip

    net = wav2lip_net
    # the original checkpoints: {"state_dict": {"module.<name>": tensor}, ...}
    ckpt = {"state_dict": {"module." + k: v for k, v in net.state_dict().items()},
            "global_step": 1}
    path = tmp_path / "wav2lip.pth"
    torch.save(ckpt, path)
    loaded = load_wav2lip(path)
    a = torch.randn(1, 1, 80, 16)
    f = torch.rand(1, 6, 96, 96)
    with torch.inference_mode():
        y1, y2 = net(a, f), loaded(a, f)
    assert y1.shape == (1, 3, 96, 96)
    assert torch.allclose(y1, y2)
    # a bare state_dict loads too
    path.unlink()
    torch.save(net.state_dict(), tmp_path / "bare.pth")
    load_wav2lip(tmp_path / "bare.pth")


def test_wav2lip_mel():
    from lipsync.engines.wav2lip import mel_window, wav2lip_mel

    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    mel = wav2lip_mel(x)
    assert mel.shape[0] == 80 and abs(mel.shape[1] - 81) <= 1
    assert -4 <= mel.min() and mel.max() <= 4
    assert mel_window(mel, 24, 25).shape == (80, 16)


def test_wav2lip_engine_renders(tmp_path, tpl3, audio_2s, outdir, wav2lip_net):
    import torch

    path = tmp_path / "w.pth"
    torch.save({"state_dict": wav2lip_net.state_dict()}, path)
    eng = load_engine("wav2lip", device="cpu", checkpoint=str(path))
    from lipsync.audio import analyse_samples

    audio = analyse_samples(audio_2s.samples[:3200])
    res = eng.render(tpl3, audio, outdir / "w.mp4")
    assert res.frames == 5 and probe(outdir / "w.mp4").has_audio
    assert os.listdir(outdir) == ["w.mp4"]


def test_wav2lip_needs_checkpoint(tmp_path):
    with pytest.raises(LipsyncError):
        load_engine("wav2lip", device="cpu")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(LipsyncError):
        load_engine("wav2lip", device="cpu", checkpoint=str(tmp_path / "junk.pth"))


@pytest.mark.slow
def test_wav2vec2_local_loader(tmp_path):
    transformers = pytest.importorskip("transformers")
    from lipsync.engines.wav2vec2 import load_wav2vec2

    cfg = transformers.Wav2Vec2Config(hidden_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=37,
                                      conv_dim=(8,) * 7, num_conv_pos_embeddings=16,
                                      num_conv_pos_embedding_groups=2)
    transformers.Wav2Vec2Model(cfg).save_pretrained(tmp_path / "w2v")
    feats = load_wav2vec2(tmp_path / "w2v")
    assert feats.rate == 50.0
    y = feats(np.random.default_rng(0).standard_normal(16000).astype(np.float32))
    assert y.shape == (49, 32) and np.isfinite(y).all()
    with pytest.raises(LipsyncError):
        load_wav2vec2(tmp_path / "missing")
