"""Live progress of one job over a websocket: /ws/jobs/<uuid>/."""
from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from jobs import progress

NOT_FOUND = 4404


class JobConsumer(AsyncJsonWebsocketConsumer):
    """Members of the job's team only (another team's job is "not found": close 4404).

    The current state of every render is sent right after connecting, and the group is joined
    before that snapshot is read, so a final state can never fall between the two."""

    async def connect(self):
        self.job_id = self.scope["url_route"]["kwargs"]["job_id"]
        allowed = await self._allowed()
        if not allowed:
            await self.close(code=NOT_FOUND)
            return
        self.language = progress.viewer_language(self.scope)
        self.group = progress.job_group(self.job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        for message in await self._snapshot():
            await self.send_json(message)

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "refresh":  # a client that slept asks for the whole state again
            for message in await self._snapshot():
                await self.send_json(message)

    async def job_event(self, event):
        await self.send_json(progress.localize(event["data"], self.language))

    @database_sync_to_async
    def _allowed(self) -> bool:
        from jobs.selectors import job_detail_for

        try:
            job_detail_for(actor=self.scope.get("user"), pk=self.job_id)
        except Http404:
            return False
        return True

    @database_sync_to_async
    def _snapshot(self) -> list[dict]:
        from jobs.selectors import job_detail_for, renders_for_job

        job = job_detail_for(actor=self.scope.get("user"), pk=self.job_id)
        messages = [{**progress.render_state(r), "snapshot": True} for r in renders_for_job(job=job)]
        messages.append({**progress.job_state(job), "snapshot": True})
        return [progress.localize(m, self.language) for m in messages]
