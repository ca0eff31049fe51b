"""Every write of the jobs app, one module per entity. Status changes happen here and only here,
so the portal, the API, the admin and the worker behave the same.

- `templates`: a team's presenter videos (upload, edit, delete, preparation)
- `batches`: jobs (one audio on N templates), the job status derived from its renders
- `renders`: the render state machine (`render_transition`) and every lifecycle step
- `dispatch`: queueing, RQ job ids, time limits, removal from RQ
- `execution`: worker glue (one render end to end, the team's render log, the audio analysis)
- `intake`: the one upload acceptance (probe once, decode once, hash once)

`user=None` means the team itself acts (an API key, or the system): the caller has already
authorised the team; with a user, the user's role in the team is checked (accounts.roles).
The engine (lipsync) is imported lazily: torch/mediapipe must not load at Django start-up.

`from jobs import services; services.job_create(...)` is the way in; the names below are the
package's public surface.
"""
from jobs.services.batches import job_cancel, job_create, job_retry, job_status_refresh
from jobs.services.common import job_finished, render_finished
from jobs.services.dispatch import (
    PREP_FN,
    RENDER_FN,
    render_enqueue,
    render_timeout,
    renders_dispatch,
    template_prepare_enqueue,
)
from jobs.services.execution import (
    AUDIO_ANALYSES_KEY,
    TeamLogFormatter,
    audio_analysis_get,
    audio_analysis_path,
    render_execute,
)
from jobs.services.intake import AUDIO_EXTENSIONS, TEMPLATE_EXTENSIONS
from jobs.services.renders import (
    render_cancel,
    render_fail,
    render_finish,
    render_mark_cancelled,
    render_requeue,
    render_retry,
    render_retry_pending,
    render_start,
    render_transition,
    renders_recover_abandoned,
)
from jobs.services.templates import (
    DuplicateTemplate,
    template_delete,
    template_prepare,
    template_update,
    template_upload,
)

__all__ = [
    "AUDIO_ANALYSES_KEY", "AUDIO_EXTENSIONS", "PREP_FN", "RENDER_FN", "TEMPLATE_EXTENSIONS",
    "DuplicateTemplate", "TeamLogFormatter",
    "audio_analysis_get", "audio_analysis_path",
    "job_cancel", "job_create", "job_finished", "job_retry", "job_status_refresh",
    "render_cancel", "render_enqueue", "render_execute", "render_fail", "render_finish", "render_finished",
    "render_mark_cancelled", "render_requeue", "render_retry", "render_retry_pending", "render_start", "render_transition",
    "render_timeout", "renders_dispatch", "renders_recover_abandoned",
    "template_delete", "template_prepare", "template_prepare_enqueue", "template_update", "template_upload",
]
