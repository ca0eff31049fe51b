"""Template library: upload streams to disk, probe, poster, rejections, preparation, tenancy."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from testutil import upload_of

from jobs import services
from jobs.models import Template

pytestmark = pytest.mark.django_db


def _files_under(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()]


@pytest.mark.parametrize("name, width, height, fps, duration, codec", [
    ("face_square_1.mp4", 700, 700, 22.13, 6.1, "h264"),
    ("face_square_2.mp4", 844, 844, 25.0, 5.0, "h264"),
    ("face_square_3.mp4", 590, 590, 25.0, 5.0, "h264"),
    ("portrait_hevc_1080x1920.mp4", 1080, 1920, 25.0, 10.0, "hevc"),
])
def test_upload_probes_the_real_media(cast, media_dir, settings, name, width, height, fps, duration, codec):
    template = services.template_upload(team=cast.acme, user=cast.bob, uploaded_file=upload_of(media_dir / name),
                                        tags="Studio, studio ,demo")
    template.refresh_from_db()
    assert (template.width, template.height) == (width, height)
    assert template.fps == pytest.approx(fps, abs=0.02)
    assert template.duration == pytest.approx(duration, abs=0.3)
    assert template.video_codec == codec
    assert template.has_audio is True
    assert template.tags == ["studio", "demo"]
    assert template.uploaded_by == cast.bob and template.team == cast.acme
    team_dir = Path(settings.MEDIA_ROOT) / f"teams/{cast.acme.pk}"
    assert Path(template.file.path).is_file() and Path(template.file.path).is_relative_to(team_dir)
    with open(template.poster.path, "rb") as f:
        assert f.read(3) == b"\xff\xd8\xff"  # a JPEG
    cast.acme.refresh_from_db()
    assert cast.acme.storage_bytes_used == (media_dir / name).stat().st_size


def test_upload_moves_the_temp_file_instead_of_reading_it(cast, media_dir):
    upload = upload_of(media_dir / "face_square_3.mp4")
    temp_path = upload.temporary_file_path()
    template = services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload)
    assert not Path(temp_path).exists()
    assert Path(template.file.path).stat().st_size == (media_dir / "face_square_3.mp4").stat().st_size


def _broken_files(media_dir: Path, tmp: Path) -> dict[str, Path]:
    data = (media_dir / "face_square_2.mp4").read_bytes()
    files = {
        "zero.mp4": b"",
        "text.mp4": b"hello, this is not a video at all\n" * 200,
        "truncated.mp4": data[: len(data) // 2],
        "corrupt.mp4": data[:4096] + bytes(len(data) - 4096),
    }
    out = {}
    for name, content in files.items():
        (tmp / name).write_bytes(content)
        out[name] = tmp / name
    return out


@pytest.mark.parametrize("which", ["zero.mp4", "text.mp4", "truncated.mp4", "corrupt.mp4"])
def test_broken_uploads_are_rejected_and_leave_no_file(cast, media_dir, tmp_path, settings, which):
    path = _broken_files(media_dir, tmp_path)[which]
    with pytest.raises(ValidationError) as info:
        services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(path))
    assert info.value.messages[0]  # a sentence for people
    assert _files_under(settings.MEDIA_ROOT) == []
    assert not Template.objects.exists()


def test_audio_only_file_is_not_a_template(cast, media_dir, tmp_path, settings):
    path = tmp_path / "speech.mp4"
    path.write_bytes((media_dir / "speech_en_1.wav").read_bytes())
    with pytest.raises(ValidationError) as info:
        services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(path))
    assert "no video" in info.value.messages[0]
    assert _files_under(settings.MEDIA_ROOT) == []


def test_limits_duration_size_and_pixels(cast, media_dir, settings):
    cast.acme.template_max_seconds = 5.5
    cast.acme.save()
    with pytest.raises(ValidationError, match="limit"):
        services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(media_dir / "face_square_1.mp4"))
    cast.acme.template_max_seconds = None
    cast.acme.template_max_bytes = 100_000
    cast.acme.save()
    with pytest.raises(ValidationError, match="largest"):
        services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(media_dir / "face_square_1.mp4"))
    cast.acme.template_max_bytes = None
    cast.acme.save()
    settings.TEMPLATE_MAX_PIXELS = 1920 * 1080 - 1
    with pytest.raises(ValidationError, match="pixels"):
        services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(media_dir / "portrait_hevc_1080x1920.mp4"))
    assert _files_under(settings.MEDIA_ROOT) == []


def test_viewer_cannot_upload(cast, media_dir, settings):
    with pytest.raises(PermissionDenied):
        services.template_upload(team=cast.acme, user=cast.vera, uploaded_file=upload_of(media_dir / "face_square_3.mp4"))
    assert _files_under(settings.MEDIA_ROOT) == []


def test_portal_upload_and_library(client, cast, media_dir):
    client.force_login(cast.bob)
    with open(media_dir / "face_square_3.mp4", "rb") as f:
        response = client.post(reverse("template_upload"), {"file": f, "name": "Anna", "tags": "office"},
                               HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 201, response.content
    template = Template.objects.get()
    assert template.name == "Anna" and template.tags == ["office"]
    page = client.get(reverse("template_list"))
    assert page.status_code == 200 and b"Anna" in page.content and b"590\xc3\x97590" in page.content
    poster = client.get(reverse("template_poster", args=[template.pk]))
    assert poster.status_code == 200 and poster["Content-Type"] == "image/jpeg"
    video = client.get(reverse("template_video", args=[template.pk]), HTTP_RANGE="bytes=0-99")
    assert video.status_code == 206 and len(b"".join(video.streaming_content)) == 100


def test_portal_rejects_a_text_file_with_a_message(client, cast, tmp_path, settings):
    client.force_login(cast.alice)
    fake = tmp_path / "clip.mp4"
    fake.write_text("not a video\n" * 100)
    with open(fake, "rb") as f:
        response = client.post(reverse("template_upload"), {"file": f}, HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 400
    assert "not a video" in response.json()["errors"][0]
    assert _files_under(settings.MEDIA_ROOT) == []


def test_viewer_sees_the_library_without_upload_form(client, cast, media_dir):
    services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(media_dir / "face_square_3.mp4"), name="Clip")
    client.force_login(cast.vera)
    page = client.get(reverse("template_list"))
    assert page.status_code == 200 and b"Clip" in page.content
    assert b"data-template-upload" not in page.content


def test_another_team_gets_404_on_every_template_url(client, cast, media_dir):
    template = services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(media_dir / "face_square_3.mp4"))
    client.force_login(cast.charlie)
    for name in ("template_detail", "template_poster", "template_video"):
        assert client.get(reverse(name, args=[template.pk])).status_code == 404, name
    assert client.post(reverse("template_delete", args=[template.pk])).status_code == 404
    assert client.post(reverse("template_detail", args=[template.pk]), {"name": "mine"}).status_code == 404
    assert b"face_square_3" not in client.get(reverse("template_list")).content
    template.refresh_from_db()
    assert template.name == "face_square_3"


def test_delete_removes_files_and_refunds_storage(cast, media_dir, django_capture_on_commit_callbacks):
    template = services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(media_dir / "face_square_3.mp4"))
    folder = Path(template.file.path).parent
    with pytest.raises(PermissionDenied):
        services.template_delete(template=template, user=cast.bob)  # members upload, admins delete
    with django_capture_on_commit_callbacks(execute=True):
        services.template_delete(template=template, user=cast.alice)
    assert not folder.exists()
    cast.acme.refresh_from_db()
    assert cast.acme.storage_bytes_used == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_preparation_on_the_prep_queue(cast, media_dir, redis_conn, tmp_path):
    """The prep worker finds the face (ready), and fails a faceless video in plain words."""
    import av
    import django_rq
    import numpy as np
    from rq import SimpleWorker

    faceless = tmp_path / "wall.mp4"
    with av.open(str(faceless), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(25):
            frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), 90 + i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    good = services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(media_dir / "face_square_3.mp4"))
    bad = services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(faceless))
    queue = django_rq.get_queue("prep")
    assert queue.count == 2
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.prep_status == "ready" and good.prep_face_fraction > 0.9
    assert bad.prep_status == "failed" and "No face" in bad.prep_error


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_preparation_records_template_fitness(client, cast, media_dir, redis_conn, tmp_path):
    """A presenter who speaks gets a clean verdict; one whose mouth never opens gets advice on
    the template page and in the API, in the viewer's language."""
    import django_rq
    import numpy as np
    from rq import SimpleWorker

    from lipsync import landmarks as L
    from lipsync.media import VideoWriter, read_frames

    frames = [f for _, f in zip(range(125), read_frames(media_dir / "face_square_3.mp4"))]
    with L.FaceTracker() as tracker:
        openings = [float(L.mouth_measures(tracker(f))[0]) for f in frames]
    shut = frames[int(np.argmin(openings))]
    still = tmp_path / "still.mp4"
    with VideoWriter(still, 590, 590, 25.0, audio=np.zeros(2 * 16000, np.float32)) as w:
        for _ in range(50):
            w.write(shut)
    good = services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(media_dir / "face_square_2.mp4"))
    mute = services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(still))
    queue = django_rq.get_queue("prep")
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    good.refresh_from_db()
    mute.refresh_from_db()
    assert good.prep_status == mute.prep_status == "ready"
    assert good.prep_fitness["ok"] and good.prep_fitness["notes"] == []
    assert "never_open" in mute.prep_fitness["notes"] and not mute.prep_fitness["speaker_adapted"]

    client.force_login(cast.bob)
    page = client.get(reverse("template_detail", args=[mute.pk])).content.decode()
    assert 'id="template-fitness-advice"' in page and "never opens" in page
    assert "less than 1.5 seconds of their speech" in page   # the rule it was prepared under
    good_page = client.get(reverse("template_detail", args=[good.pk])).content.decode()
    assert 'id="template-fitness-advice"' not in good_page
    assert good.prep_fitness["speaker_adapted"] and "Adapted to this presenter" in good_page
    page_zh = client.get(reverse("template_detail", args=[mute.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'id="template-fitness-advice"' in page_zh and "never opens" not in page_zh
    assert "语音不足 1.5 秒" in page_zh

    from accounts.api_keys import apikey_create

    _, token = apikey_create(team=cast.acme, name="t", created_by=cast.alice)
    body = client.get(f"/api/v1/templates/{mute.pk}/", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert "never_open" in body["fitness"]["notes"] and "never opens" in body["fitness"]["advice"][0]
