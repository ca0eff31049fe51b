"""config.storage on the filesystem backend (the S3 side runs against moto's server in
test_production_mode.py): no presigned URL, the file's own path, an atomic move into place."""
from __future__ import annotations

from pathlib import Path

from django.core.files.storage import default_storage

from config.storage import media_download_url, media_local_path, media_store_file, storage_is_remote


class Field:
    def __init__(self, name):
        self.name, self.storage = name, default_storage

    def __bool__(self):
        return bool(self.name)

    @property
    def path(self):
        return self.storage.path(self.name)


def test_filesystem_has_no_presigned_url_and_reads_in_place(settings):
    assert storage_is_remote() is False
    target = Path(settings.MEDIA_ROOT) / "teams/1/x.mp4"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"v")
    assert media_download_url(Field("teams/1/x.mp4"), filename="x.mp4") is None
    assert media_download_url(Field("")) is None
    assert media_local_path(Field("teams/1/x.mp4")) == target


def test_store_file_moves_into_place(settings, tmp_path):
    source = tmp_path / "render.tmp.mp4"
    source.write_bytes(b"rendered")
    name = media_store_file(local_path=source, name="teams/1/jobs/j/renders/r.mp4")
    assert name == "teams/1/jobs/j/renders/r.mp4"
    assert (Path(settings.MEDIA_ROOT) / name).read_bytes() == b"rendered"
    assert not source.exists()
