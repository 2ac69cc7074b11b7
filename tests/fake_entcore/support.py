"""The fake ENT running, with the real HTTP client and `EntcoreDirectory` in front of it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from bot.entcore.client import EntcoreClient
from bot.entcore.directory import EntcoreDirectory
from tests.fake_entcore.app import FakeEnt
from tests.fake_entcore.seed import demo_state
from tests.fake_entcore.server import serving
from tests.fake_entcore.state import EntState

# Short, so that a hanging route times out fast in the tests.
TIMEOUT = 0.5


@dataclass
class RunningEnt:
    """The served fake, its URL, and a client with short time-outs and recorded pauses."""

    fake: FakeEnt
    url: str
    client: EntcoreClient
    pauses: list[float] = field(default_factory=list)

    @property
    def state(self) -> EntState:
        return self.fake.state

    def directory(self, token: str, cache_seconds: float = 30.0) -> EntcoreDirectory:
        """The entcore directory acting with this bearer token."""
        return EntcoreDirectory(self.client, token, cache_seconds=cache_seconds)

    def reset_calls(self) -> None:
        self.fake.calls.clear()


@contextlib.contextmanager
def running_ent(state: EntState | None = None) -> Iterator[RunningEnt]:
    """The fake ENT on a free loopback port (the demo schools unless told)."""
    fake = FakeEnt(state or demo_state())
    with serving(fake) as url:
        pauses: list[float] = []
        client = EntcoreClient(
            url, timeout=httpx.Timeout(TIMEOUT), read_backoff=0.01, sleep=pauses.append
        )
        try:
            yield RunningEnt(fake, url, client, pauses)
        finally:
            client.close()
