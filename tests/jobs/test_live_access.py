"""An open progress socket follows the member's access (issue 17, Low 7 and 8): removed from the
team, a viewer's socket is closed with 4403 (it used to keep streaming, and a "refresh" then
crashed the consumer); a path no route matches is refused cleanly instead of raising."""
from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from jobs import consumers, progress

pytestmark = pytest.mark.django_db(transaction=True)


def _ws(path: str, user=None) -> WebsocketCommunicator:
    from config.asgi import application

    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


@pytest.fixture
def job(cast):
    from jobs.models import Job, Render

    job = Job.objects.create(team=cast.acme, created_by=cast.alice, title="live", audio_filename="a.wav")
    Render.objects.create(job=job, team=cast.acme, template_name="t")
    return job


async def _drain_snapshot(comm: WebsocketCommunicator) -> list[dict]:
    """The snapshot sent on connect: every render's state, then the job's."""
    messages = []
    while not messages or not (messages[-1].get("type") == "job" and messages[-1].get("snapshot")):
        messages.append(await comm.receive_json_from(timeout=5))
    return messages


def _remove(team, user):
    from accounts.models import Membership

    Membership.objects.filter(team=team, user=user).delete()


def test_refresh_after_removal_closes_with_access_ended(cast, job, redis_conn):
    async def scenario():
        comm = await sync_to_async(_ws)(f"/ws/jobs/{job.pk}/", cast.vera)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        await _drain_snapshot(comm)
        await sync_to_async(_remove)(cast.acme, cast.vera)
        await comm.send_json_to({"type": "refresh"})
        closed = await comm.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": consumers.ACCESS_ENDED}, closed
        await comm.wait(timeout=5)

    asyncio.run(scenario())


def test_events_stop_and_the_socket_closes_once_the_member_is_removed(cast, job, redis_conn, monkeypatch):
    monkeypatch.setattr(consumers, "EVENT_RECHECK_SECONDS", 0.0)

    async def scenario():
        comm = await sync_to_async(_ws)(f"/ws/jobs/{job.pk}/", cast.vera)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        await _drain_snapshot(comm)
        await sync_to_async(progress.publish)(job.pk, {"type": "render", "marker": "before"})
        assert (await comm.receive_json_from(timeout=5))["marker"] == "before"
        await sync_to_async(_remove)(cast.acme, cast.vera)
        await sync_to_async(progress.publish)(job.pk, {"type": "render", "marker": "after"})
        closed = await comm.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": consumers.ACCESS_ENDED}, closed

    asyncio.run(scenario())


def test_an_idle_socket_is_closed_within_the_recheck_interval(cast, job, redis_conn, monkeypatch):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.3)

    async def scenario():
        comm = await sync_to_async(_ws)(f"/ws/jobs/{job.pk}/", cast.vera)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        await _drain_snapshot(comm)
        await sync_to_async(_remove)(cast.acme, cast.vera)
        closed = await comm.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": consumers.ACCESS_ENDED}, closed

    asyncio.run(scenario())


@pytest.mark.parametrize("path", ["/ws/nope/", "/ws/jobs/not-a-uuid/", "/ws/", "/elsewhere"])
def test_unknown_websocket_path_is_refused_cleanly(cast, path):
    async def scenario():
        comm = await sync_to_async(_ws)(path, cast.alice)
        connected, code = await comm.connect(timeout=5)
        assert (connected, code) == (False, 4404)

    asyncio.run(scenario())


@pytest.mark.parametrize("socket", ["job", "library"])
def test_a_client_gone_before_the_snapshot_leaves_nothing_behind(cast, job, redis_conn, monkeypatch, socket):
    """A client that resets the connection right after the handshake makes the snapshot's send
    fail (uvicorn raises ClientDisconnected), which ends the consumer without disconnect().
    Its group must be left anyway, and the job page's membership watcher must end with it:
    left running, it later tried to close the dead socket and the server logged "Task
    exception was never retrieved" as an ERROR."""
    import gc

    from channels.layers import get_channel_layer
    from uvicorn.protocols.utils import ClientDisconnected

    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.05)
    from config.asgi import application

    path = f"/ws/jobs/{job.pk}/" if socket == "job" else f"/ws/teams/{cast.acme.pk}/templates/"
    comm = _ws(path, cast.vera)  # for its scope: path, origin and session cookie

    async def scenario():
        errors: list[dict] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
        inbox: asyncio.Queue = asyncio.Queue()
        await inbox.put({"type": "websocket.connect"})
        sent = []

        async def send(message):
            sent.append(message["type"])
            if message["type"] != "websocket.accept":
                raise ClientDisconnected()

        with pytest.raises(ClientDisconnected):
            await application(comm.scope, inbox.get, send)
        assert sent[0] == "websocket.accept"
        groups = {g: set(members) for g, members in get_channel_layer()._get_layer().groups.items() if members}
        await sync_to_async(_remove)(cast.acme, cast.vera)  # what made the leaked watcher send
        await asyncio.sleep(0.5)
        watchers = [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__qualname__", "") == "JobConsumer._watch"]
        gc.collect()
        await asyncio.sleep(0)
        return groups, watchers, errors

    groups, watchers, errors = asyncio.run(scenario())
    assert groups == {}
    assert watchers == []
    assert errors == []
