"""asyncio's note about writes to a vanished websocket client is not a warning in our logs."""
from __future__ import annotations

import logging


def test_closed_socket_writes_are_dropped_other_asyncio_warnings_kept(caplog):
    log = logging.getLogger("asyncio")
    assert any(type(f).__name__ == "ClosedSocketWrites" for f in log.filters)  # settings.LOGGING installed it
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        for _ in range(50):
            log.warning("socket.send() raised exception.")
        log.warning("Executing <Task ...> took 0.5 seconds")
    assert [r.getMessage() for r in caplog.records] == ["Executing <Task ...> took 0.5 seconds"]
