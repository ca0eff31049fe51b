"""Live progress of one job over a websocket: /ws/jobs/<uuid>/."""
from __future__ import annotations

import asyncio
import time

from channels.db import database_sync_to_async
from django.http import Http404

from jobs import progress
from jobs.group_consumer import GroupConsumer

NOT_FOUND = 4404  # not this visitor's job (or no such job), at connect
ACCESS_ENDED = 4403  # the visitor was a member when the socket opened and no longer is
RECHECK_SECONDS = 10.0  # an open socket re-checks its member at least this often
EVENT_RECHECK_SECONDS = 2.0  # ... and before an event, when the last check is older than this


class JobConsumer(GroupConsumer):
    """Members of the job's team only (another team's job is "not found": close 4404).

    The current state of every render is sent right after connecting, and the group is joined
    before that snapshot is read, so a final state can never fall between the two.

    Membership is checked again while the socket is open (every RECHECK_SECONDS, before events
    when the last check is older than EVENT_RECHECK_SECONDS, and on every "refresh"): someone
    removed from the team is disconnected with ACCESS_ENDED."""

    async def connect(self):
        self.job_id = self.scope["url_route"]["kwargs"]["job_id"]
        allowed = await self._allowed()
        if not allowed:
            await self.close(code=NOT_FOUND)
            return
        self.checked_at = time.monotonic()
        self.language = progress.viewer_language(self.scope)
        await self.join(progress.job_group(self.job_id))
        await self.accept()
        self.watcher = asyncio.create_task(self._watch())
        await self._send_snapshot()

    async def leave(self):
        """Stop the membership watcher too, however the socket ends."""
        watcher = getattr(self, "watcher", None)
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
        await super().leave()

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "refresh":  # a client that slept asks for the whole state again
            if await self._still_allowed(max_age=0):
                await self._send_snapshot()

    async def job_event(self, event):
        if await self._still_allowed(max_age=EVENT_RECHECK_SECONDS):
            await self.send_json(progress.localize(event["data"], self.language))

    async def _send_snapshot(self):
        messages = await self._snapshot()
        if messages is None:
            await self._end_access()
            return
        for message in messages:
            await self.send_json(message)

    async def _still_allowed(self, *, max_age: float) -> bool:
        if getattr(self, "ended", False):
            return False
        if time.monotonic() - self.checked_at >= max_age:
            if not await self._allowed():
                await self._end_access()
                return False
            self.checked_at = time.monotonic()
        return True

    async def _end_access(self):
        if not getattr(self, "ended", False):
            self.ended = True
            await self.leave()
            await self.close(code=ACCESS_ENDED)

    async def _watch(self):
        try:
            while not getattr(self, "ended", False):
                await asyncio.sleep(RECHECK_SECONDS)
                await self._still_allowed(max_age=RECHECK_SECONDS)
        except OSError:  # closing a socket whose client is already gone (ClientDisconnected)
            self.ended = True

    @database_sync_to_async
    def _allowed(self) -> bool:
        from jobs.selectors import job_detail_for

        try:
            job_detail_for(actor=self.scope.get("user"), pk=self.job_id)
        except Http404:
            return False
        return True

    @database_sync_to_async
    def _snapshot(self) -> list[dict] | None:
        """Every render's state and the job's; None when the visitor may no longer see the job."""
        from jobs.selectors import job_detail_for, renders_for_job

        try:
            job = job_detail_for(actor=self.scope.get("user"), pk=self.job_id)
        except Http404:
            return None
        messages = [{**progress.render_state(r), "snapshot": True} for r in renders_for_job(job=job)]
        messages.append({**progress.job_state(job), "snapshot": True})
        return [progress.localize(m, self.language) for m in messages]
