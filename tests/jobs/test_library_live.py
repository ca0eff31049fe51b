"""The template library's websocket: members only, and the card comes in the viewer's language."""
from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


def _ws(team_id, user=None, language=None):
    from config.asgi import application

    headers = [(b"origin", b"http://testserver")]
    cookies = []
    if user is not None:
        client = Client()
        client.force_login(user)
        cookies.append(f"sessionid={client.cookies['sessionid'].value}")
    if language:
        cookies.append(f"django_language={language}")
    if cookies:
        headers.append((b"cookie", "; ".join(cookies).encode()))
    return WebsocketCommunicator(application, f"/ws/teams/{team_id}/templates/", headers=headers)


def test_strangers_are_refused_and_members_get_cards_in_their_language(cast, make_template, redis_conn):
    import asyncio

    template = make_template("face_square_3.mp4", warm=False)
    other = make_template("face_square_2.mp4", team=cast.globex, user=cast.charlie, warm=False)
    asyncio.run(_scenario(cast, template, other))


async def _scenario(cast, template, other):
    from jobs.library_live import template_publish

    for stranger in (cast.charlie, None):
        comm = await sync_to_async(_ws)(cast.acme.pk, stranger)
        assert await comm.connect() == (False, 4404)
    comm = await sync_to_async(_ws)(cast.acme.pk, cast.bob, "zh-hans")
    connected, _ = await comm.connect()
    assert connected and (await comm.receive_json_from(timeout=5))["snapshot"]
    await sync_to_async(template_publish)(template)
    message = await comm.receive_json_from(timeout=5)
    assert message["type"] == "template" and message["id"] == str(template.pk)
    assert f'data-template-id="{template.pk}"' in message["card_html"] and "等待中" in message["card_html"]
    # Another team's template id asked for by a member of this team: nothing.
    await comm.send_json_to({"type": "refresh", "ids": [str(other.pk), "not-a-uuid"]})
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()
