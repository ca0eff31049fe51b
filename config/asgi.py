"""ASGI entry point: HTTP through Django, websockets through Channels (origin- and auth-checked)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from config import runtime  # noqa: E402

runtime.prepare()  # folders, and the embedded Redis unless runall (its owner) said no

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from jobs.routing import websocket_urlpatterns  # noqa: E402

NO_SUCH_SOCKET = 4404


class UnknownWebsocketPaths:
    """A websocket to a path no route matches is refused cleanly (a close before accepting,
    which the client sees as a rejected handshake) instead of raising in URLRouter (a 500)."""

    def __init__(self, router: URLRouter):
        self.router = router

    async def __call__(self, scope, receive, send):
        try:
            return await self.router(scope, receive, send)
        except ValueError as e:
            if not str(e).startswith("No route found"):
                raise
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": NO_SUCH_SOCKET})


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(UnknownWebsocketPaths(URLRouter(websocket_urlpatterns)))),
    }
)
