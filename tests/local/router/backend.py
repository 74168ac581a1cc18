"""A tiny stand-in for a model service, run as its own process by the tests.

``python -m tests.local.router.backend VERSION PORT_FILE`` binds a free loopback port, writes
it to PORT_FILE and serves until terminated. A process of its own, not a thread of the test
process, so that the load generator and the backends do not share one interpreter lock.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MEDIA_TYPE = "application/vnd.backend+json"


def backend_app(version: str) -> Starlette:
    """/predict answers its version and the content type it received, with the status the body
    asks for, after ``sleep`` seconds; /feedback answers which backend received which token."""

    async def predict(request: Request) -> JSONResponse:
        body = await request.json()
        await asyncio.sleep(float(body.get("sleep", 0)))
        return JSONResponse(
            {"version": version, "content_type": request.headers.get("content-type")},
            status_code=int(body.get("status", 200)),
            media_type=MEDIA_TYPE,
        )

    async def feedback(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"received_by": version, "token": body.get("token")})

    return Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/feedback", feedback, methods=["POST"]),
        ]
    )


def main(version: str, port_file: Path) -> None:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and Nagle's
    # algorithm with delayed ACKs would add 40 ms to every response.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port_file.write_text(str(sock.getsockname()[1]))
    config = uvicorn.Config(backend_app(version), log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
