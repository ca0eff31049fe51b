"""Uploads are checked against the team's limits while they stream, not after they landed.

`QuotaUploadHandler` writes to FILE_UPLOAD_TEMP_DIR like Django's TemporaryFileUploadHandler,
but stops writing a file as soon as it passes the per-file maximum (TEMPLATE_MAX_BYTES /
AUDIO_MAX_BYTES or the team's override) or the team's remaining storage, deletes the partial
temp file, and marks the request so the view can say why:

    rejection = upload_rejection(request)   # a QuotaExceeded or None
    if rejection: show str(rejection)

It skips the file (SkipFile) rather than aborting the whole request, so the other form fields
(the CSRF token included, whatever their order) still arrive and the view can answer with a
clear message instead of a reset connection. A hard cap on the body belongs in the proxy
(nginx client_max_body_size), which refuses before a byte reaches Django.
"""
from __future__ import annotations

import os

from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler
from django.utils.translation import gettext as _

from accounts.quotas import QuotaExceeded, format_bytes, storage_bytes_used, upload_max_bytes

# Multipart framing and ordinary form fields; a body bigger than budget + this holds too much file.
FORM_OVERHEAD_BYTES = 256 * 1024


def upload_rejection(request) -> QuotaExceeded | None:
    """Why the handler refused a file of this request (over quota / too large), else None."""
    return getattr(request, "upload_rejection", None)


def upload_kind_for(field_name: str) -> str:
    """Which per-file limit applies to a form field: audio fields hold the batch audio."""
    return "audio" if "audio" in (field_name or "").lower() else "template"


def _request_team(request):
    """The team an upload is charged to: set explicitly by the view, an API key's, or the portal's."""
    team = getattr(request, "upload_team", None)
    if team is not None:
        return team
    auth = getattr(request, "auth", None)
    if getattr(auth, "team_id", None) is not None:
        return auth.team
    team = getattr(request, "team", None)
    return team if getattr(team, "pk", None) is not None else None


class QuotaUploadHandler(TemporaryFileUploadHandler):
    def __init__(self, request=None):
        super().__init__(request)
        self._team_loaded = False
        self._team = None
        self._storage_left: int | None = None
        self._file_max = 0
        self._file_received = 0
        self.request_received = 0  # file bytes written in this request, all files

    # --- the team's budget, read once per request ----------------------------------------
    def _budget(self):
        if not self._team_loaded:
            self._team_loaded = True
            self._team = _request_team(self.request) if self.request is not None else None
            if self._team is not None:
                self._storage_left = int(self._team.plan("storage_bytes_limit")) - storage_bytes_used(team=self._team)
        return self._team, self._storage_left

    def _reject(self, error: QuotaExceeded):
        if self.request is not None and upload_rejection(self.request) is None:
            self.request.upload_rejection = error
        self._discard_file()
        raise SkipFile(str(error))

    def _discard_file(self):
        file = self.__dict__.pop("file", None)
        if file is None:
            return
        path = file.temporary_file_path()
        try:
            file.close()  # a NamedTemporaryFile deletes itself on close
        finally:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass

    def _note_received(self):
        if self.request is not None:
            self.request.upload_bytes_received = self.request_received

    # --- Django's handler protocol ------------------------------------------------------
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # A body far beyond the budget: refuse every file before writing a byte of it.
        team, left = self._budget()
        if team is not None and content_length and content_length > max(left, 0) + FORM_OVERHEAD_BYTES:
            self.request.upload_rejection = self._storage_error(team, content_length)
        return None

    def new_file(self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None):
        # The previous file of this request is already in request.FILES: never close it here.
        self.__dict__.pop("file", None)
        if self.request is not None and upload_rejection(self.request) is not None:
            raise SkipFile("request already refused")
        team, left = self._budget()
        kind = getattr(self.request, "upload_kind", None) or upload_kind_for(field_name)
        self._file_max = upload_max_bytes(team=team, kind=kind)
        self._file_received = 0
        self._kind = kind
        if content_length is not None and content_length > self._file_max:
            self._reject(self._size_error(kind, content_length))
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)

    def receive_data_chunk(self, raw_data, start):
        n = len(raw_data)
        if self._file_received + n > self._file_max:
            self._reject(self._size_error(self._kind, self._file_received + n))
        team, left = self._budget()
        if team is not None and self.request_received + n > left:
            self._reject(self._storage_error(team, self.request_received + n))
        self._file_received += n
        self.request_received += n
        self._note_received()
        return super().receive_data_chunk(raw_data, start)

    def upload_interrupted(self):
        self._discard_file()

    # --- messages -----------------------------------------------------------------------
    def _size_error(self, kind, size):
        what = _("Audio files") if kind == "audio" else _("Template videos")
        return QuotaExceeded(
            _("File too large: %(what)s may be at most %(limit)s; this one is over %(size)s.")
            % {"what": what, "limit": format_bytes(self._file_max), "size": format_bytes(size)},
            code="file_too_large", used=size, limit=self._file_max,
        )

    def _storage_error(self, team, size):
        limit = int(team.plan("storage_bytes_limit"))
        used = limit - (self._storage_left or 0)
        return QuotaExceeded(
            _("Storage limit reached: %(used)s of %(limit)s used, this upload needs %(need)s more.")
            % {"used": format_bytes(used), "limit": format_bytes(limit), "need": format_bytes(size)},
            code="storage", used=used, limit=limit,
        )
