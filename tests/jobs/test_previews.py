"""HEVC templates get a small H.264 web preview; renders keep using the original (issue 14)."""
from __future__ import annotations

import pytest
from testutil import probe

from jobs import previews

pytestmark = pytest.mark.django_db


def test_hevc_template_gets_an_h264_preview_and_the_page_plays_it(client, cast, make_template):
    template = make_template("portrait_hevc_1080x1920.mp4", warm=False)
    assert not previews.web_playable(template) and previews.web_preview_state(template) == "making"
    original = template.file.path
    previews.template_preview_ensure(template)
    template.refresh_from_db()
    info = probe(template.preview.path)
    assert info.video_codec == "h264" and (info.width, info.height) == (404, 720)
    assert info.has_audio and abs(info.duration - template.duration) < 0.2
    assert template.file.path == original and probe(original).video_codec == "hevc"  # rendering uses this
    client.force_login(cast.alice)
    response = client.get(f"/templates/{template.pk}/video/")
    assert response["Content-Type"] == "video/mp4"
    assert b"".join(response.streaming_content) == open(template.preview.path, "rb").read()
    html = client.get(f"/templates/{template.pk}/").content.decode()
    assert "<video" in html and "smaller H.264 preview" in html and "HEVC (H.265) + AAC · MP4" in html


def test_h264_needs_no_preview_and_a_failed_one_is_explained(client, cast, make_template):
    from jobs.models import Template

    square = make_template("face_square_2.mp4", warm=False)
    assert previews.web_playable(square)
    assert previews.template_preview_ensure(square).preview.name == ""
    hevc = make_template("portrait_hevc_1080x1920.mp4", warm=False)
    Template.objects.filter(pk=hevc.pk).update(prep_status="ready")  # prepared, but no preview came
    client.force_login(cast.alice)
    html = client.get(f"/templates/{hevc.pk}/").content.decode()
    assert "<video" not in html and "cannot be shown here" in html


def test_the_web_preview_counts_toward_storage_and_is_freed_with_its_template(cast, make_template):
    from accounts import quotas
    from jobs import services

    hevc = make_template("portrait_hevc_1080x1920.mp4", warm=False)
    uploaded = quotas.storage_bytes_used(team=cast.acme)
    assert uploaded == hevc.size_bytes
    previews.template_preview_ensure(hevc)
    hevc.refresh_from_db()
    size = hevc.preview.size
    assert size > 0 and hevc.preview_size_bytes == size
    assert quotas.storage_bytes_used(team=cast.acme) == uploaded + size
    cast.acme.refresh_from_db()
    assert cast.acme.storage_bytes_used == uploaded + size   # the cached figure the pages show
    previews.template_preview_ensure(hevc)                     # made once, charged once
    assert quotas.storage_bytes_used(team=cast.acme) == uploaded + size
    stale = type(hevc).objects.get(pk=hevc.pk)
    stale.preview_size_bytes = 0                               # a row read before the preview came
    services.template_delete(template=stale, user=cast.alice)
    assert quotas.storage_bytes_used(team=cast.acme) == 0
