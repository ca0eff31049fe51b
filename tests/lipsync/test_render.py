"""End-to-end renders with the default engine on real media (short audio cuts)."""

import os

import numpy as np
import pytest
from lipsync_testutil import media, write_audio

from lipsync import align
from lipsync.errors import NoFaceError, RenderCancelled, SilentAudioError, UndecodableMediaError
from lipsync.evaluate import fidelity
from lipsync.media import decode_audio, read_frames
from lipsync.prepare import prepare_template
from lipsync.probing import probe
from lipsync.render import region_mask


def _mouth_change(out_path, tpl, n=20):
    """Mean absolute difference inside the lower-face region between output and template."""
    diffs = []
    for i, (o, t) in enumerate(zip(read_frames(out_path), read_frames(tpl.video_path))):
        if i >= n:
            break
        m = region_mask(tpl.landmarks[i], o.shape)
        diffs.append(np.abs(o[m].astype(int) - t[: o.shape[0], : o.shape[1]][m]).mean())
    return float(np.mean(diffs))


def test_render_basic(tpl3, audio_2s, engine, outdir):
    stages = []
    out = outdir / "o.mp4"
    res = engine.render(tpl3, audio_2s, out, progress=lambda f, s: stages.append((s, f)))
    assert os.listdir(outdir) == ["o.mp4"]
    info = probe(out)
    assert info.has_video and info.has_audio
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert (info.width, info.height) == (590, 590)
    assert info.fps == pytest.approx(25.0)
    assert abs(info.frame_count - audio_2s.duration * 25) <= 1
    assert abs(info.duration - audio_2s.duration) <= 1 / 25 + 0.03
    assert res.frames == info.frame_count and res.face_fraction == 1.0
    assert {s for s, _ in stages} >= {"analysing", "rendering", "encoding"}
    assert all(0.0 <= f <= 1.0 for _, f in stages)
    # mouth region changed, everything else untouched (up to the encoder)
    assert _mouth_change(out, tpl3) > 2.0
    fid = fidelity(out, tpl3)
    assert fid["psnr_outside"] >= 38.0
    # each render carries its own sync estimate (how well it lip-syncs is measured against
    # ground truth in test_quality_floor_on_a_held_out_clip)
    assert res.sync_score is not None and np.isfinite(res.sync_score) and res.sync_z is not None


def test_render_fps_override(tpl3, audio_2s, engine, outdir):
    out = outdir / "o30.mp4"
    res = engine.render(tpl3, audio_2s, out, fps=30)
    info = probe(out)
    assert info.fps == pytest.approx(30.0)
    assert abs(info.frame_count - audio_2s.duration * 30) <= 1 == 1
    assert res.frames == info.frame_count


def test_render_odd_rate_template(cache_dir, audio_2s, engine, outdir):
    tpl = prepare_template(media("face_square_1.mp4"), cache_dir=cache_dir)  # 22.13 fps VFR
    out = outdir / "o.mp4"
    engine.render(tpl, audio_2s, out)
    info = probe(out)
    assert info.fps == pytest.approx(22.13, abs=0.01)
    assert (info.width, info.height) == (700, 700)
    assert abs(info.frame_count - audio_2s.duration * 22.131) <= 1
    assert fidelity(out, tpl)["psnr_outside"] >= 38.0


def test_ping_pong_long_audio(short_template, cache_dir, speech_2s, engine, outdir):
    """Audio 3x the template: the template plays forward, backward, forward."""
    from lipsync.audio import analyse_samples

    tpl = prepare_template(short_template, cache_dir=cache_dir)
    x = decode_audio(media("speech_en_1.wav"))[: 3 * 16000]
    audio = analyse_samples(x)
    out = outdir / "loop.mp4"
    res = engine.render(tpl, audio, out)
    assert res.frames == 75
    idx = align.template_indices(75, 25, tpl.n_frames, tpl.fps)
    src = list(read_frames(short_template))
    # compare an output frame with its ping-pong source outside the mouth region
    for j in (10, 30, 50, 70):
        o = next(f for k, f in enumerate(read_frames(out)) if k == j)
        t = src[idx[j]]
        keep = ~region_mask(tpl.landmarks[idx[j]], o.shape)
        d = o[keep].astype(float) - t[keep]
        psnr = 10 * np.log10(255 ** 2 / max((d ** 2).mean(), 1e-9))
        assert psnr > 35, (j, idx[j], psnr)
    assert idx[30] == 18 and idx[50] == 2  # backward then forward again


def test_audio_shorter_cuts(tpl3, engine, outdir):
    from lipsync.audio import analyse_samples

    x = decode_audio(media("speech_en_1.wav"))[: 16000]
    res = engine.render(tpl3, analyse_samples(x), outdir / "short.mp4")
    assert res.frames == 25 < tpl3.n_frames


def test_face_leaves_frame_unchanged(face_leaves, cache_dir, audio_2s, engine, outdir,
                                     monkeypatch):
    """Frames without a face are passed through bit-identical (checked before encoding)."""
    import lipsync.engines.base as base

    tpl = prepare_template(face_leaves, cache_dir=cache_dir)
    assert tpl.has_face[:12].all() and not tpl.has_face[16:].any()
    written = []

    class Spy(base.VideoWriter):
        def write(self, rgb):
            written.append(rgb.copy())
            super().write(rgb)

    monkeypatch.setattr(base, "VideoWriter", Spy)
    engine.render(tpl, audio_2s, outdir / "o.mp4")
    src = list(read_frames(face_leaves))
    idx = align.template_indices(len(written), 25, tpl.n_frames, tpl.fps)
    changed = 0
    for j, frame in enumerate(written):
        i = idx[j]
        if not tpl.has_face[i]:
            assert np.array_equal(frame, src[i])
        else:
            changed += not np.array_equal(frame, src[i])
    assert changed > 5


def test_no_face_raises(no_face_video, cache_dir):
    with pytest.raises(NoFaceError) as e:
        prepare_template(no_face_video, cache_dir=cache_dir)
    assert "\n" not in str(e.value) and e.value.code == "no_face"


@pytest.mark.parametrize("name", ["truncated", "empty", "text"])
def test_corrupt_template(broken_files, cache_dir, name):
    with pytest.raises(UndecodableMediaError):
        prepare_template(broken_files[name], cache_dir=cache_dir)


def test_silent_audio(tpl3, engine, outdir):
    from lipsync.audio import AnalysedAudio

    silent = AnalysedAudio(sha256="0", samples=np.zeros(32000, np.float32), sample_rate=16000,
                           duration=2.0, features={})
    with pytest.raises(SilentAudioError):
        engine.render(tpl3, silent, outdir / "o.mp4")
    assert os.listdir(outdir) == []


def test_cancel_within_a_batch(tpl3, audio_2s, engine, outdir):
    from lipsync.engines.base import BATCH

    polls = []

    def cancelled():
        polls.append(1)
        return len(polls) > 3

    progress = []
    with pytest.raises(RenderCancelled):
        engine.render(tpl3, audio_2s, outdir / "o.mp4", cancelled=cancelled,
                      progress=lambda f, s: progress.append((s, f)))
    rendered = [f for s, f in progress if s == "rendering"]
    assert max(rendered) * (audio_2s.duration * 25) <= 2 * BATCH  # stopped in the 2nd batch
    assert os.listdir(outdir) == []


def test_render_file_mp3_audio(audio_formats, outdir, cache_dir):
    from lipsync import render_file

    out = outdir / "o.mp4"
    res = render_file(media("face_square_3.mp4"), audio_formats["mp3"], out,
                      cache_dir=cache_dir, device="cpu")
    assert abs(res.duration - 1.5) <= 1 / 25 + 0.03
    assert probe(out).has_audio
    assert os.listdir(outdir) == ["o.mp4"]


def test_render_file_bad_audio(broken_files, outdir, cache_dir):
    from lipsync import render_file

    for name in ("truncated", "empty", "text", "noise"):
        with pytest.raises((UndecodableMediaError, SilentAudioError)):
            render_file(media("face_square_3.mp4"), broken_files[name], outdir / "o.mp4",
                        cache_dir=cache_dir, device="cpu")
    assert os.listdir(outdir) == []


@pytest.mark.slow
def test_portrait_hevc(cache_dir, audio_2s, engine, outdir):
    tpl = prepare_template(media("portrait_hevc_1080x1920.mp4"), cache_dir=cache_dir)
    out = outdir / "p.mp4"
    res = engine.render(tpl, audio_2s, out)
    info = probe(out)
    assert (info.width, info.height) == (1080, 1920)
    assert info.video_codec == "h264"
    assert abs(info.frame_count - 50) <= 1
    assert res.face_fraction > 0.9
    assert fidelity(out, tpl)["psnr_outside"] >= 38.0


@pytest.mark.parametrize("stage", ["fetch", "process", "write"])
def test_pipeline_error_in_any_stage_stops_all(stage):
    """A failure in the decode, mouth or encode stage is raised to the caller and no stage
    thread is left running."""
    import threading

    from lipsync.engines.base import pipeline

    written = []

    def boom(j):
        if j == 7:
            raise OSError(f"{stage} failed")

    def fetch(j):
        if stage == "fetch":
            boom(j)
        return j, np.full((4, 4, 3), j, np.uint8)

    def process(j, i, frame):
        if stage == "process":
            boom(j)
        return frame

    def write(frame):
        if stage == "write":
            boom(int(frame[0, 0, 0]))
        written.append(int(frame[0, 0, 0]))

    with pytest.raises(OSError, match=f"{stage} failed"):
        pipeline(200, fetch, process, write)
    assert len(written) < 200
    assert not [t for t in threading.enumerate() if t.name.startswith("lipsync-")]


def test_pipeline_keeps_order():
    from lipsync.engines.base import pipeline

    out = []
    busy = pipeline(50, lambda j: (j, j), lambda j, i, f: f * 2, out.append)
    assert out == [2 * j for j in range(50)] and set(busy) == {"fetch", "process", "write"}


def test_render_error_midway_leaves_no_file(tpl3, audio_2s, outdir):
    from lipsync.engines import load_engine

    class Failing(type(load_engine("default", device="cpu"))):
        def frame_renderer(self, template, audio, fps, n_frames):
            inner = super().frame_renderer(template, audio, fps, n_frames)

            def per_frame(frame, i, j):
                if j == 20:
                    raise RuntimeError("mouth stage failed")
                return inner(frame, i, j)

            return per_frame

    with pytest.raises(RuntimeError, match="mouth stage failed"):
        Failing(device="cpu").render(tpl3, audio_2s, outdir / "o.mp4")
    assert os.listdir(outdir) == []


def test_output_keeps_stereo_at_48k(tpl3, audio_2s, engine, outdir, tmp_path):
    """The original recording's channels reach the output: stereo stays stereo, at 48 kHz."""
    x = decode_audio(media("speech_en_1.wav"), sample_rate=44100)[: 2 * 44100]
    stereo = write_audio(tmp_path / "st.wav", np.stack([x, 0.5 * x]), 44100, "pcm_s16le",
                         sample_fmt="s16", layout="stereo")
    out = outdir / "st.mp4"
    engine.render(tpl3, audio_2s, out, audio_source=str(stereo))
    info = probe(out)
    assert info.audio_channels == 2 and info.audio_sample_rate == 48000
    both = decode_audio(out, sample_rate=48000, mono=False)
    assert both.shape[0] == 2
    # the right channel is the left one at half level, as recorded
    ratio = np.abs(both[1]).mean() / np.abs(both[0]).mean()
    assert 0.4 < ratio < 0.6
    mono_out = outdir / "mono.mp4"
    engine.render(tpl3, audio_2s, mono_out, audio_source=str(media("portrait_hevc_audio.wav")))
    assert probe(mono_out).audio_channels == 1


def test_video_encoder_choice():
    from lipsync.media import video_encoder

    assert video_encoder("cpu") == "libx264"
    # without a GPU here, CUDA renders still encode, with libx264 (the choice is logged)
    assert video_encoder("cuda:0") in ("libx264", "h264_nvenc")
