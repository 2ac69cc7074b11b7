"""`python -m bot bench telegram`: throughput and latency of the whole Telegram stack.

Updates go through everything a real one does: the fake Bot API server hands them out over
HTTP (long polling), PTB decodes and dispatches them, the handlers ask the core, and the
replies come back to the server as sendMessage requests. The load is a closed loop: a fixed
number of updates are in flight, and each reply received lets the next update in, so the
latency measured is that of a busy bot, not of a growing backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import statistics
import time
from collections import deque
from dataclasses import dataclass, field

from pydantic import SecretStr

from bot.app import start
from bot.channels.telegram.app import build_application, polling_session
from bot.channels.telegram.fake_bot_api import Call, FakeBotApi
from bot.settings import Settings

# Questions parents ask (not the evaluation sentences), and the commands they type.
MESSAGES = (
    "comment activer mon compte educonnect",
    "j'ai oublié mon mot de passe",
    "bonjour",
    "/aide",
    "/start",
    "c'est quoi l'application one pocket ?",
    "mon enfant n'a pas reçu ses identifiants",
    "merci beaucoup",
)
WARM_UP = 100
FIRST_USER_ID = 500_000_000


@dataclass
class BenchResult:
    """What one run measured."""

    updates: int
    seconds: float
    latencies: list[float]
    concurrency: int
    users: int
    rate_limiter: bool
    extra_replies: int = 0
    pinned_cpu: int | None = None
    unanswered: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Messages answered per second."""
        return self.updates / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        """The latency under which `share` of the messages were answered."""
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class _Progress:
    queued: int = 0
    answered: int = 0
    extra: int = 0
    start: float = 0.0
    end: float = 0.0


def _pin_to_one_cpu() -> int | None:
    """Run on one core, as the target says; returns the CPU, or None where unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


async def bench_telegram(
    settings: Settings, n: int, *, concurrency: int = 4, rate_limiter: bool = False
) -> BenchResult:
    """Push WARM_UP + n updates through the stack; measure the last n."""
    total = WARM_UP + n
    # Enough users that none comes near the flood guard (20 messages in 10 s).
    users = max(1000, 4 * concurrency)
    async with FakeBotApi() as api:
        bench_settings = settings.model_copy(
            update={
                # model_copy does not validate: the field's own type, not a str.
                "telegram_token": SecretStr(api.token),
                "telegram_api_url": api.base_url,
                # A throw-away database in memory, seeded with the demo school by start().
                "database_url": "sqlite://",
            }
        )
        app = start(bench_settings)
        application = build_application(bench_settings, app.assistant, rate_limiter=rate_limiter)

        free = deque(range(FIRST_USER_ID, FIRST_USER_ID + users))
        in_flight: dict[int, tuple[int, int]] = {}  # chat id -> (sequence number, update id)
        latencies: list[float] = []
        done = asyncio.Event()
        state = _Progress()

        def queue_next() -> None:
            sequence = state.queued
            state.queued += 1
            user_id = free.popleft()
            user = api.user(user_id, "Parent")
            update = api.send_text(user, MESSAGES[sequence % len(MESSAGES)])
            in_flight[user_id] = (sequence, update["update_id"])
            if sequence == WARM_UP:
                state.start = time.perf_counter()

        def on_call(call: Call) -> None:
            if call.method not in ("sendMessage", "editMessageText"):
                return
            entry = in_flight.pop(call.chat_id, None)
            if entry is None:
                state.extra += 1  # a second reply to the same message
                return
            sequence, update_id = entry
            if sequence >= WARM_UP:
                latencies.append(call.at - api.served_at[update_id])
            state.answered += 1
            free.append(call.chat_id)
            if state.queued < total:
                queue_next()
            if state.answered == total:
                state.end = call.at
                done.set()

        api.listeners.append(on_call)
        async with polling_session(application):
            # The collector would pause the loop at random moments; the knowledge base and
            # the libraries loaded so far are long-lived, so they are left out of its scans.
            gc.collect()
            gc.freeze()
            try:
                for _ in range(min(concurrency, total)):
                    queue_next()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), timeout=max(60.0, n / 20))
            finally:
                gc.unfreeze()
        app.close()

    measured = max(0, state.answered - WARM_UP)
    end = state.end or time.perf_counter()
    return BenchResult(
        updates=measured,
        seconds=end - state.start,
        latencies=latencies,
        concurrency=concurrency,
        users=users,
        rate_limiter=rate_limiter,
        extra_replies=state.extra,
        unanswered=total - state.answered,
    )


def format_result(result: BenchResult) -> str:
    """The report printed by the bench command, in French."""
    ms = 1000
    lines = [
        f"bench telegram : {result.updates} messages mesurés (après {WARM_UP} d'échauffement), "
        f"{result.concurrency} en cours à tout instant, {result.users} utilisateurs",
        "  chaîne complète : faux serveur Bot API (HTTP, 127.0.0.1) → PTB long polling → "
        "handlers → cœur → sendMessage en HTTP",
        "  AIORateLimiter : "
        + (
            "actif (plafonne à 30 messages/s : la limite de Telegram, pas de la pile)"
            if result.rate_limiter
            else "retiré pour la mesure (il plafonnerait à 30 messages/s, la limite de "
            "Telegram, que le faux serveur n'a pas)"
        ),
        "  un processus, une boucle asyncio, "
        + (
            f"épinglé sur le CPU {result.pinned_cpu}"
            if result.pinned_cpu is not None
            else "sans épinglage CPU"
        ),
        f"  débit : {result.rate:.0f} messages/s",
        f"  latence (message servi → réponse reçue) : p50 {result.percentile(0.5) * ms:.1f} ms, "
        f"p99 {result.percentile(0.99) * ms:.1f} ms, max "
        f"{(max(result.latencies) if result.latencies else float('nan')) * ms:.1f} ms",
    ]
    if result.latencies:
        lines.append(f"  moyenne : {statistics.fmean(result.latencies) * ms:.1f} ms")
    if result.extra_replies:
        lines.append(f"  réponses supplémentaires (non comptées) : {result.extra_replies}")
    if result.unanswered:
        lines.append(f"  SANS RÉPONSE : {result.unanswered} messages")
    return "\n".join(lines)


def run_bench(settings: Settings, n: int, *, concurrency: int, rate_limiter: bool) -> int:
    """Entry point of `python -m bot bench telegram`."""
    cpu = _pin_to_one_cpu()
    result = asyncio.run(
        bench_telegram(settings, n, concurrency=concurrency, rate_limiter=rate_limiter)
    )
    result.pinned_cpu = cpu
    print(format_result(result))
    return 1 if result.unanswered else 0
