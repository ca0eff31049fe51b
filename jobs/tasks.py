"""RQ entry points: look up, call a service, nothing else."""
from __future__ import annotations

from rq import get_current_job

from jobs import previews, services, worker
from jobs.models import Template


def render_run(render_id: str) -> str:
    rq_job = get_current_job()
    return services.render_execute(
        render_id=render_id,
        rq_job_id=rq_job.id if rq_job else "",
        engine_provider=worker.engine_get,
        worker_name=worker.current_name(),
        stop_requested=worker.stop_requested,
    )


def template_prepare_run(template_id: str) -> str | None:
    template = Template.objects.filter(pk=template_id).first()
    if template is not None:
        previews.template_preview_ensure(template)  # first: the page can show it sooner
    template = services.template_prepare(template_id=template_id)
    return template.prep_status if template else None

