"""A loopback HTTP server whose capacity is known by construction, to check the capacity search.

It serves at most ``--concurrency`` requests at a time, each for ``--service-ms``, and queues the
rest (an M/D/c queue): no more than concurrency / service time requests per second can ever
complete. ``POST /predict`` answers like the model service (with a feedback token), ``POST
/feedback`` and ``GET /readyz`` answer at once. Plain asyncio streams keep it one cheap thread,
so the machine's cores stay with the load generator.

    python -m tests.loadtest.limited_server --port 8000 --concurrency 2 --service-ms 20
"""

from __future__ import annotations

import argparse
import asyncio

_PREDICTION = b'{"model":"limited","version":"v1","predictions":[0],"feedback_tokens":["t"]}'


def _response(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def _serve(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    slots: asyncio.Semaphore,
    service_s: float,
) -> None:
    try:
        while request_line := await reader.readline():
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            if request_line.startswith(b"POST /predict"):
                async with slots:
                    await asyncio.sleep(service_s)
                writer.write(_response(_PREDICTION))
            else:
                writer.write(_response(b"{}"))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _main(port: int, concurrency: int, service_s: float) -> None:
    slots = asyncio.Semaphore(concurrency)
    server = await asyncio.start_server(
        lambda r, w: _serve(r, w, slots, service_s), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--service-ms", type=float, required=True)
    args = parser.parse_args()
    asyncio.run(_main(args.port, args.concurrency, args.service_ms / 1000))
