"""The flow of updates: a flood guard per user, and per-user ordering with concurrency across
users."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.channels.telegram.incoming import sender_id

# What the flood guard says, once, to the user it mutes.
SLOW_DOWN = (
    "Doucement : vous m'envoyez beaucoup de messages d'un coup. Je reprends dans quelques "
    "secondes, merci de patienter."
)
FLOOD_LIMIT = 20
FLOOD_WINDOW = 10.0

Verdict = Literal["pass", "warn", "drop"]
# Updates accepted at once, most of them waiting for their sender's earlier ones.
WAITING_UPDATES = 4096


class FloodGuard:
    """More than `limit` messages from one user within `window` seconds mutes that user for a
    window: the message that crosses the line is answered once with a slow-down note, the
    following ones are dropped unprocessed until the window has passed."""

    def __init__(
        self,
        limit: int = FLOOD_LIMIT,
        window: float = FLOOD_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._recent: dict[int, deque[float]] = {}
        self._muted_until: dict[int, float] = {}
        self._checks = 0

    def check(self, user_id: int) -> Verdict:
        """Count one message of this user: pass it, warn once, or drop it."""
        now = self.clock()
        until = self._muted_until.get(user_id)
        if until is not None:
            if now < until:
                return "drop"
            del self._muted_until[user_id]
            self._recent.pop(user_id, None)
        recent = self._recent.setdefault(user_id, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= self.limit:
            self._muted_until[user_id] = now + self.window
            self._recent.pop(user_id, None)
            return "warn"
        recent.append(now)
        self._checks += 1
        if self._checks % 1024 == 0:
            self._forget_quiet_users(now)
        return "pass"

    def _forget_quiet_users(self, now: float) -> None:
        # Keeps memory bounded by the users active in the last window, not all users ever seen.
        for user_id in [u for u, r in self._recent.items() if not r or r[-1] <= now - self.window]:
            del self._recent[user_id]
        for user_id in [u for u, t in self._muted_until.items() if t <= now]:
            del self._muted_until[user_id]


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """Processes the updates of different senders concurrently and those of one sender in order.

    Concurrency lets many conversations overlap (a reply to Telegram takes tens of
    milliseconds, a core call runs in a worker thread); per-sender order keeps a conversation
    coherent (« bloque les parents » is understood before « Confirmer » is pressed).
    """

    def __init__(self, max_concurrent_updates: int = 64) -> None:
        # PTB's own semaphore (process_update, final) is taken before do_process_update: it
        # only bounds the updates accepted at once; the working ones are bounded by _slots.
        super().__init__(max(WAITING_UPDATES, max_concurrent_updates))
        self._slots = asyncio.Semaphore(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Wait for the earlier updates of the same sender, then for a free slot, then run."""
        sender = sender_id(update) if isinstance(update, Update) else None
        if sender is None:
            async with self._slots:
                await coroutine
            return
        # The sender's turn is taken before a slot: updates queued behind a slow one of the
        # same sender (or a flood) must not hold the slots other senders need. Tasks reach
        # this point in arrival order (FIFO scheduling) and asyncio.Lock wakes its waiters in
        # FIFO order, so one sender's updates keep their order.
        lock = self._locks.setdefault(sender, asyncio.Lock())
        self._waiting[sender] = self._waiting.get(sender, 0) + 1
        try:
            async with lock, self._slots:
                await coroutine
        finally:
            # The last one out forgets the sender: the dict holds only senders with work.
            self._waiting[sender] -= 1
            if not self._waiting[sender]:
                del self._waiting[sender]
                del self._locks[sender]

    def pending_senders(self) -> int:
        """How many senders have updates in progress or waiting (bounded by the traffic)."""
        return len(self._locks)

    async def initialize(self) -> None:
        """Nothing to allocate."""

    async def shutdown(self) -> None:
        """Nothing to free."""
