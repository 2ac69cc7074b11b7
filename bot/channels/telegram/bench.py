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
import os
import statistics
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from bot.app import DEMO_SCHOOL, settled_heap, start
from bot.channels.telegram.app import build_application, polling_session
from bot.channels.telegram.fake_bot_api import Call, FakeBotApi
from bot.settings import Settings
from bot.storage.schoolfile import import_school
from bot.storage.store import Store, driver_in_transaction

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
    db_delay_ms: float = 0.0
    database: str = "SQLite en mémoire"
    workers: int = 1
    # Database round trips (statements, commits) while the measured messages ran.
    round_trips: int = 0

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
    trips: int = 0


class RoundTrips:
    """Counts the database round trips (statements and commits) since `count` was reset."""

    def __init__(self) -> None:
        self.count = 0


def slow_database(engine: Engine, delay: float) -> RoundTrips:
    """Count every round trip to the database, and add `delay` seconds to each (a database
    far away or loaded), as a sleep in the calling thread, like a real wait."""
    trips = RoundTrips()

    def round_trip(*_: Any) -> None:
        trips.count += 1
        if delay:
            time.sleep(delay)

    def transaction_end(connection: Any) -> None:
        # A COMMIT or ROLLBACK goes to the server only when a BEGIN went (reads before the
        # first write run outside a transaction: Store._begin_before_first_write).
        if driver_in_transaction(connection.connection.dbapi_connection):
            round_trip()

    event.listen(engine, "before_cursor_execute", round_trip)
    for name in ("commit", "rollback"):
        event.listen(engine, name, transaction_end)
    return trips


def _pin_to_one_cpu() -> int | None:
    """Run on one core, as the target says; returns the CPU, or None where unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


async def bench_telegram(
    settings: Settings,
    n: int,
    *,
    concurrency: int = 4,
    rate_limiter: bool = False,
    db_delay_ms: float = 0.0,
    database_url: str = "sqlite://",
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
                # A throw-away database (in memory, or a schema of its own on PostgreSQL)
                # seeded with the demo school.
                "database_url": database_url,
            }
        )
        app = start(bench_settings)
        trips = slow_database(app.store.engine, db_delay_ms / 1000)
        workers = 1 if database_url.startswith("sqlite") else settings.core_workers
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
                trips.count = 0

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
                state.trips = trips.count
                done.set()

        api.listeners.append(on_call)
        async with polling_session(application):
            # The collector would pause the loop at random moments; the knowledge base and
            # the libraries loaded so far are long-lived, so they are left out of its scans.
            with settled_heap():
                try:
                    for _ in range(min(concurrency, total)):
                        queue_next()
                    # A slow database on one thread (SQLite) answers ~1000/(trips x delay) a
                    # second.
                    patience = max(60.0, n / 20, 2 * total * 8 * db_delay_ms / 1000 / workers)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(done.wait(), timeout=patience)
                finally:
                    state.trips = state.trips or trips.count
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
        db_delay_ms=db_delay_ms,
        database="SQLite en mémoire" if database_url.startswith("sqlite") else "PostgreSQL",
        workers=workers,
        round_trips=state.trips,
    )


def format_result(result: BenchResult) -> str:
    """The report printed by the bench command, in French."""
    ms = 1000
    trips_per_message = result.round_trips / result.updates if result.updates else 0.0
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
        f"  base : {result.database}, {result.workers} thread(s) pour le cœur, "
        f"{result.db_delay_ms:g} ms ajoutées à chaque aller-retour",
        f"  allers-retours base par message : {trips_per_message:.1f} "
        f"(soit {trips_per_message * result.db_delay_ms:.0f} ms d'attente base par message)",
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


@contextlib.contextmanager
def throwaway_schema(url: str, *, prepare: bool = True) -> Iterator[str]:
    """A new PostgreSQL schema in the database at `url`, migrated and holding the demo
    school unless not `prepare`; yields its URL, dropped on the way out. A SQLite URL is
    yielded as it is."""
    if url.startswith("sqlite"):
        yield url
        return
    import psycopg

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        separator = "&" if "?" in url else "?"
        scoped = f"{url}{separator}options=-csearch_path%3D{schema}"
        if prepare:
            store = Store.from_url(scoped)
            try:
                store.upgrade()
                import_school(store, DEMO_SCHOOL)
            finally:
                store.dispose()
        yield scoped
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run_bench(
    settings: Settings,
    n: int,
    *,
    concurrency: int,
    rate_limiter: bool,
    db_delay_ms: float = 0.0,
    database_url: str = "sqlite://",
) -> int:
    """Entry point of `python -m bot bench telegram`."""
    # Pinned to one core with SQLite (the historical figure); on PostgreSQL the server needs
    # the other core.
    cpu = _pin_to_one_cpu() if database_url.startswith("sqlite") else None
    with throwaway_schema(database_url) as url:
        result = asyncio.run(
            bench_telegram(
                settings,
                n,
                concurrency=concurrency,
                rate_limiter=rate_limiter,
                db_delay_ms=db_delay_ms,
                database_url=url,
            )
        )
    result.pinned_cpu = cpu
    print(format_result(result))
    return 1 if result.unanswered else 0
