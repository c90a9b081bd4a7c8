"""A request body over the server's limit is refused with 413 without being kept (it never reaches the disk).

The declared ``Content-Length`` is checked first; a body sent without one (chunked) is counted as it arrives and
cut off at the limit. The rest of a refused body is read and dropped (up to :data:`DRAIN_LIMIT`) before the answer,
so that a client that sends its whole body before reading the answer (browsers, urllib) gets the 413 and its message
instead of a broken connection.
"""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]
DRAIN_LIMIT = 2**30


class _TooLargeError(Exception):
    """The body passed the limit while it was being read."""


class BodyLimit:
    """ASGI middleware: at most ``max_bytes`` of request body."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _drain(receive, 0)
            await self._refuse(send, int(declared))
            return
        received = 0
        started = False

        async def counted_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLargeError
            return message

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _TooLargeError:
            if not started:
                received = await _drain(receive, received)
                await self._refuse(send, received)

    async def _refuse(self, send: Any, size: int) -> None:
        """Answer 413 with a message (the connection is closed after it)."""
        body = json.dumps({"error": f"upload too large: {size / 2**20:.1f} MiB sent, the server takes at most "
                                    f"{self.max_bytes / 2**20:.1f} MiB per request"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


async def _drain(receive: Any, received: int) -> int:
    """Read and drop the rest of a request body (at most :data:`DRAIN_LIMIT` bytes in all); the bytes seen."""
    while received <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            break
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return received
