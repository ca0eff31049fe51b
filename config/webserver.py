"""The one command line that serves the platform over HTTP and websockets.

uvicorn, not daphne: Twisted (under daphne) reads a whole multipart request body into memory
before Django sees it (about 13x the upload's size), while uvicorn streams the body to Django,
which spools it to disk. Used by `manage.py runall`, the tests' live servers and (spelled out)
docker/.
"""
from __future__ import annotations

import sys


def command(host: str, port: int, *, proxy_headers: bool = False, trusted_proxy: str = "127.0.0.1") -> list[str]:
    """proxy_headers: take the client's address from X-Forwarded-For, but only on connections
    from `trusted_proxy` (an address or network; never "*", which lets any client choose the
    address every per-IP limit counts)."""
    args = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", str(port),
            "--ws", "websockets-sansio", "--lifespan", "off", "--no-server-header"]
    if proxy_headers:
        args += ["--proxy-headers", "--forwarded-allow-ips", trusted_proxy]
    return args
