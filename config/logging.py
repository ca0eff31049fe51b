"""Structured (JSON-lines) log records for production."""
import json
import logging


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class ClosedSocketWrites(logging.Filter):
    """Drops asyncio's "socket.send() raised exception." records. asyncio logs one for every
    write to a connection it already knows is lost, before the protocol hears about it; after a
    websocket client vanishes, each event still fanned out to it in that moment (and there are
    many on a busy batch) would be a warning. The disconnect itself is handled: uvicorn tells the
    consumer, which leaves its group."""

    MESSAGE = "socket.send() raised exception."

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "asyncio" and record.msg == self.MESSAGE)
