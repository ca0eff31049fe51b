"""The one rule of every live page's websocket: it leaves its channel-layer group however the
socket ends."""
from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class GroupConsumer(AsyncJsonWebsocketConsumer):
    """A consumer that follows one group of the channel layer (``join``).

    disconnect() is not called when a send to a client already gone ends the consumer
    (uvicorn raises ClientDisconnected from it, for instance while the first snapshot is sent
    to a client that reset the connection): the group is left here too, or the layer would
    keep a subscription and queue events for a socket nobody reads."""

    group: str | None = None

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.leave()

    async def join(self, group: str) -> None:
        self.group = group
        await self.channel_layer.group_add(group, self.channel_name)

    async def disconnect(self, code):
        await self.leave()

    async def leave(self) -> None:
        """Leave the group; safe to call more than once."""
        if self.group:
            group, self.group = self.group, None
            await self.channel_layer.group_discard(group, self.channel_name)
