"""What every service module of the jobs app shares: the role check, the media working
folder, the engine-error sentence and the two "finished" signals."""
from __future__ import annotations

import shutil
from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.dispatch import Signal
from django.http import Http404
from django.utils.translation import gettext as _

from accounts.access import membership_for
from accounts.models import Team
from config.storage import media_folder_delete, media_work_path
from jobs.models import error_text

# Other parts (webhooks, notifications) listen here instead of being called from the worker.
render_finished = Signal()  # sender=Render, render=...
job_finished = Signal()  # sender=Job, job=...


def _authorize(*, team: Team, user, action: str) -> None:
    """`user=None`: the team itself acts (API key, system); the caller already authorised it."""
    if user is None:
        return
    membership = membership_for(user, team)
    if membership is None:
        raise Http404("Not found")
    if not membership.can(action):
        raise PermissionDenied(_("Your role in this team does not allow this."))


def _media_path(relative: str) -> Path:
    """Where a file is written and probed before it is stored (MEDIA_ROOT on the filesystem)."""
    return media_work_path(relative)


def _media_discard(relative_folder: str) -> None:
    """A rejected upload or a deleted object: its local working folder and its stored folder."""
    shutil.rmtree(_media_path(relative_folder), ignore_errors=True)
    media_folder_delete(relative_folder)


def _error_message(error) -> str:
    return error_text(getattr(error, "code", ""), str(error))
