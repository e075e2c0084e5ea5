"""A whole request's body is refused (413) once it passes a limit — by its declared Content-Length before a
byte is read, or while it streams when it declares none — so an oversized upload is never spooled to disk.
A body that stops arriving for `stall_s` seconds is answered 408 (uvicorn has no such timeout of its own), so a
slow or vanished client does not hold a connection and its half upload for ever."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("galaxy_tui.serve")


class _TooLarge(Exception):
    pass


class _Stalled(Exception):
    pass


async def _refuse(send: Send, limit: int) -> None:
    await _answer(send, 413, f"the request is larger than {limit:,} bytes; send fewer or smaller images (the "
                             f"server's --max-upload-mb and --max-files set the limit)")


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, stall_s: float = 30.0):
        self.app, self.limit, self.stall_s = app, limit, stall_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await _refuse(send, self.limit)
            return
        received = 0
        responded = arrived = False

        async def counted() -> Message:
            nonlocal received, arrived
            if arrived:  # the body is whole: what follows (a disconnect) may take as long as the answer does
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.stall_s)
            except TimeoutError:
                raise _Stalled from None
            arrived = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def noting(message: dict[str, Any]) -> None:
            nonlocal responded
            responded = responded or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, noting)
        except _TooLarge:
            if not responded:
                await _refuse(send, self.limit)
        except _Stalled:
            log.warning("a client sent nothing for %g s mid-upload; answered 408 and closed", self.stall_s)
            if not responded:
                await _answer(send, 408, f"the upload stalled for {self.stall_s:g} s; send it again")
