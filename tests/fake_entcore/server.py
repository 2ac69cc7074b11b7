"""The fake ENT served by uvicorn in a thread, on a free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn

from tests.fake_entcore.app import FakeEnt, build_app
from tests.web_support import free_port


@contextlib.contextmanager
def serving(ent: FakeEnt) -> Iterator[str]:
    """Serve the fake ENT; yields its base URL. Hanging requests are cut short on exit."""
    port = free_port()
    config = uvicorn.Config(
        build_app(ent),
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    # Not the main thread: uvicorn installs no signal handlers there.
    thread = threading.Thread(target=server.run, name="fake-entcore", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake ENT did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        ent.stopping = True
        server.should_exit = True
        thread.join(timeout=10)
