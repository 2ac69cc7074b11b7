"""What the bot asked of the fake Bot API: every call recorded with its parameters, awaitable
by the tests, and failures queued to answer the next calls of a method."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    """One Bot API request the bot made, with its decoded parameters and what was answered."""

    method: str
    params: dict[str, Any]
    result: Any = None
    at: float = field(default_factory=time.perf_counter)

    @property
    def chat_id(self) -> Any:
        """The chat the call was about, if any."""
        return self.params.get("chat_id")


@dataclass
class Failure:
    """An error answer, as Telegram gives it."""

    error_code: int
    description: str
    retry_after: int | None = None


class ApiError(Exception):
    """Raised by a method implementation: becomes an {"ok": false} answer."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.failure = Failure(error_code, description, retry_after)


@dataclass
class _CallWaiter:
    matches: Callable[[Call], bool]
    found: list[Call] = field(default_factory=list)
    event: asyncio.Event = field(default_factory=asyncio.Event)


class CallLog:
    """The calls received, in order; tests look at them or wait for them."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        # Called synchronously with each recorded call (the benchmark reacts to replies).
        self.listeners: list[Callable[[Call], None]] = []
        self._waiters: list[_CallWaiter] = []
        self._failures: dict[str, deque[Failure]] = {}

    def mark(self) -> int:
        """The number of calls so far: pass it as `after` to look only at later calls."""
        return len(self.calls)

    def calls_of(self, method: str, *, chat_id: Any = None, after: int = 0) -> list[Call]:
        """The calls of `method` (to that chat) made after index `after`."""
        return [
            call
            for call in self.calls[after:]
            if call.method == method and (chat_id is None or call.chat_id == chat_id)
        ]

    async def wait_call(
        self,
        method: str,
        *,
        chat_id: Any = None,
        after: int = 0,
        where: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
    ) -> Call:
        """The first call of `method` (after index `after`) matching; waits for it if needed."""
        calls = await self.wait_calls(
            method, 1, chat_id=chat_id, after=after, where=where, timeout=timeout
        )
        return calls[0]

    async def wait_calls(
        self,
        method: str,
        count: int,
        *,
        chat_id: Any = None,
        after: int = 0,
        where: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
    ) -> list[Call]:
        """The first `count` matching calls after index `after`, waiting until there are."""

        def matches(call: Call) -> bool:
            return (
                call.method == method
                and (chat_id is None or call.chat_id == chat_id)
                and (where is None or where(call))
            )

        waiter = _CallWaiter(matches)
        waiter.found = [call for call in self.calls[after:] if matches(call)]
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                while len(waiter.found) < count:
                    waiter.event.clear()
                    await waiter.event.wait()
        except TimeoutError:
            seen = [(c.method, str(c.params.get("text", ""))[:60]) for c in self.calls[after:]]
            raise AssertionError(
                f"{len(waiter.found)}/{count} {method} call(s) within {timeout} s; saw {seen}"
            ) from None
        finally:
            self._waiters.remove(waiter)
        return waiter.found[:count]

    def fail_next(
        self, method: str, error_code: int, description: str, retry_after: int | None = None
    ) -> None:
        """Make the next call of `method` fail the way Telegram would."""
        self._failures.setdefault(method, deque()).append(
            Failure(error_code, description, retry_after)
        )

    def next_failure(self, method: str) -> Failure | None:
        """The failure queued for this call of `method`, if any (consumed)."""
        failures = self._failures.get(method)
        return failures.popleft() if failures else None

    def record(self, call: Call) -> None:
        """Add a call, wake whoever waits for it and tell the listeners."""
        self.calls.append(call)
        for waiter in self._waiters:
            if waiter.matches(call):
                # Collected here, not on wake-up, so that no call is missed in between.
                waiter.found.append(call)
                waiter.event.set()
        for listener in self.listeners:
            listener(call)
