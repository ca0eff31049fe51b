"""The template library, live: a template's preparation state reaches every open library page
of its team over a websocket (/ws/teams/<team id>/templates/), the same Channels layer the job
page's progress uses. Each viewer gets the card re-drawn in their own language."""
from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils import translation

from jobs import progress
from jobs.group_consumer import GroupConsumer

log = logging.getLogger(__name__)

NOT_FOUND = 4404


def library_group(team_id) -> str:
    return f"templates-{team_id}"


def template_publish(template) -> None:
    """Tell the team's open library pages that this template changed (never fails the caller)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    try:
        async_to_sync(get_channel_layer().group_send)(
            library_group(template.team_id), {"type": "library.event", "template": str(template.pk)})
    except Exception:
        log.warning("library publish failed for template %s", template.pk, exc_info=True)


class LibraryConsumer(GroupConsumer):
    """Members of the team only (anyone else: close 4404, as for another team's job)."""

    async def connect(self):
        self.team_id = self.scope["url_route"]["kwargs"]["team_id"]
        if not await self._member():
            await self.close(code=NOT_FOUND)
            return
        self.language = progress.viewer_language(self.scope)
        await self.join(library_group(self.team_id))
        await self.accept()
        await self.send_json({"type": "library", "snapshot": True})  # connected: cards follow from here

    async def receive_json(self, content, **kwargs):
        # On (re)connect the page asks again for the cards it shows as not ready yet, so a
        # change between drawing the page and connecting is not missed.
        if content.get("type") == "refresh":
            for template_id in list(content.get("ids") or [])[:200]:
                message = await self._card(template_id)
                if message is not None:
                    await self.send_json(message)

    async def library_event(self, event):
        message = await self._card(event["template"])
        if message is not None:
            await self.send_json(message)

    @database_sync_to_async
    def _member(self) -> bool:
        from accounts.access import membership_for
        from accounts.models import Team

        team = Team.objects.filter(pk=self.team_id).first()
        return team is not None and membership_for(self.scope.get("user"), team) is not None

    @database_sync_to_async
    def _card(self, template_id) -> dict | None:
        from jobs.models import Template

        if not self._still_member():
            return None
        try:
            t = Template.objects.filter(pk=template_id, team_id=self.team_id).first()
        except (ValueError, ValidationError):  # not a uuid
            return None
        if t is None:  # deleted meanwhile, or not this team's
            return None
        with translation.override(self.language):
            html = render_to_string("jobs/_template_card.html", {"t": t})
        return {"type": "template", "id": str(t.pk), "prep_status": t.prep_status, "card_html": html}

    def _still_member(self) -> bool:
        from accounts.models import Membership

        user = self.scope.get("user")
        return bool(getattr(user, "is_authenticated", False)) and Membership.objects.filter(user=user, team_id=self.team_id).exists()
