"""uvicorn serving the web app inside a running event loop: listen, then tell the channel
(Telegram registers its webhook); on SIGINT/SIGTERM stop listening, finish the requests under
way, run the app's lifespan end (PTB processes the updates accepted), and return normally."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import uvicorn
from starlette.applications import Starlette

log = logging.getLogger(__name__)

# Requests under way get this long to finish once a stop is asked (Telegram waits ~60 s).
GRACEFUL_SECONDS = 30


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the caller decides when to stop, and the
    process is not killed by the signal re-raised after shutdown (uvicorn ≥ 0.29 does that,
    which would skip closing the store)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """No signal handlers: see serve_until_signalled."""
        yield


def listening_socket(listen: str, port: int) -> socket.socket:
    """The server's socket, bound now: a port in use is an OSError here, before anything is
    started (the command line turns it into one French line)."""
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    sock = socket.create_server((listen, port), family=family, backlog=2048)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def web_server(
    web: Starlette,
    listen: str,
    port: int,
    *,
    on_listening: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[int]:
    """Serve `web` (its lifespan first) and call `on_listening` once it listens; yields the
    port listened on (0 asks the system for a free one). On exit: a graceful shutdown."""
    sock = listening_socket(listen, port)
    config = uvicorn.Config(
        web,
        # Logging is ours (bot.logs): uvicorn's records go to the root logger's handler.
        log_config=None,
        lifespan="on",
        server_header=False,
        ws="none",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if serving.done():
            # The lifespan failed (PTB could not start): uvicorn has logged why.
            serving.result()
            raise RuntimeError("the web server stopped while starting")
        if on_listening is not None:
            # Listening before registering: Telegram's first delivery finds the server up.
            await on_listening()
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        try:
            await serving
        except SystemExit as stopped:
            # uvicorn's way of saying the app failed to start: a failure, not a stop.
            raise RuntimeError("the web app failed to start (see the log)") from stopped
        finally:
            sock.close()


async def serve_until_signalled(
    web: Starlette,
    listen: str,
    port: int,
    *,
    on_listening: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """The web server until SIGINT or SIGTERM; what the app accepted is processed before
    returning (its lifespan's end)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with web_server(web, listen, port, on_listening=on_listening) as bound:
            log.info("web server: listening on %s:%s", listen, bound)
            await stop.wait()
            log.info("web server: stopping")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
