"""A python-socketio (PyPI) server with the swarmbench events, on aiohttp.

Usage: python sio_server.py [--port 0] [--ping-interval MS] [--ping-timeout MS]
Receives: its options. Serves Socket.IO at /socket.io/ on 127.0.0.1 with the events of
the default namespace:
  echo(*args)              ack with exactly the args
  join(room)               ack {room, members}
  leave(room)              ack {room, members}
  broadcast(room, *data)   emit `broadcast` *data to the room, ack the recipient count
Emits: {"listening": PORT} on stdout once bound (one JSON line), nothing else on stdout.
Must not: bind anything but 127.0.0.1.
"""

import argparse
import asyncio
import json
import signal
import sys

import socketio
from aiohttp import web


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ping-interval", type=int, default=25000)
    p.add_argument("--ping-timeout", type=int, default=20000)
    return p.parse_args()


def main():
    args = parse_args()
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins="*",
        ping_interval=args.ping_interval / 1000,
        ping_timeout=args.ping_timeout / 1000,
    )
    app = web.Application()
    sio.attach(app)

    def members(room):
        return sum(1 for _ in sio.manager.get_participants("/", room))

    @sio.event
    async def echo(sid, *data):
        return data

    @sio.event
    async def join(sid, room):
        if not isinstance(room, str):
            return None
        await sio.enter_room(sid, room)
        return {"room": room, "members": members(room)}

    @sio.event
    async def leave(sid, room):
        if not isinstance(room, str):
            return None
        await sio.leave_room(sid, room)
        return {"room": room, "members": members(room)}

    @sio.event
    async def broadcast(sid, room, *data):
        if not isinstance(room, str):
            return None
        await sio.emit("broadcast", tuple(data), room=room)
        return members(room)

    async def start():
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        sys.stdout.write(json.dumps({"listening": port}) + "\n")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(s, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(start())


if __name__ == "__main__":
    main()
