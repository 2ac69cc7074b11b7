"""`python -m bot bench load`: several webhook instances over one PostgreSQL database, fed by
simulated users, checked for lost updates, updates handled twice and changes executed twice.

Everything runs on 127.0.0.1 as in production: the fake Bot API stands for Telegram (the
instances send their replies to it), `python -m bot db upgrade` is the release step, each
instance is a `python -m bot webhook` process, and the generator POSTs updates to them with
the webhook secret, as Telegram does, again and again to the same URL until it answers 200.
Users arrive at a steady rate, at most `active` of them talking at once, each reading an
answer before typing the next message. With `--faults`, database connections are killed with
pg_terminate_backend every second, and one instance is restarted mid-run (SIGTERM, as a
deployment does, then started again on the same port).

Modules: load_users (the users and the matching of answers), load_processes (instances,
environment, killed connections), load_report (the checks and the report).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bot.channels.telegram.bench import throwaway_schema
from bot.channels.telegram.fake_bot_api import FakeBotApi
from bot.channels.telegram.load_processes import Instance, instance_env, kill_connections, tagged
from bot.channels.telegram.load_report import LoadResult, count, format_load
from bot.channels.telegram.load_users import DIRECTORS, FIRST_USER, Generator
from bot.storage.store import Store

__all__ = ["LoadResult", "format_load", "run_load", "run_load_command"]

# Users arriving per second, and at most that many talking at once (a user talks through
# their script: 3 questions, or 5 to 7 steps for a director).
ARRIVALS = 10.0
ACTIVE = 100
# A person reads the answer and types the next message: this many seconds.
THINK = (0.5, 1.5)
# The restart begins this long after the first user arrives.
RESTART_AFTER = 2.0


async def run_load(
    database: str,
    *,
    users: int = 500,
    faults: bool = False,
    instances: int = 2,
    arrivals: float = ARRIVALS,
    active: int = ACTIVE,
    seed: int = 1,
) -> LoadResult:
    """The whole run: schema, release step, instances, users, checks."""
    result = LoadResult(users, instances, faults, arrivals=arrivals, active=active)
    with (
        throwaway_schema(database, prepare=False) as schema_url,
        tempfile.TemporaryDirectory() as logs,
    ):
        url, tag = tagged(schema_url)
        async with FakeBotApi() as api:
            env = instance_env(api.base_url, url)
            # The release step, once, before any instance starts.
            subprocess.run(  # noqa: S603
                [sys.executable, "-m", "bot", "db", "upgrade"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            servers = [Instance(i, env, Path(logs), demo=i == 0) for i in range(instances)]
            try:
                for server in servers:  # the first fills the empty directory (--demo)
                    await server.start()
                await _drive(api, servers, schema_url, tag, random.Random(seed), result)
            finally:
                result.instances_cpu = [server.cpu_seconds() for server in servers]
                for server in servers:
                    await server.stop()
            result.server_tracebacks = sum(server.tracebacks() for server in servers)
    return result


async def _drive(
    api: FakeBotApi,
    servers: list[Instance],
    url: str,
    tag: str,
    rng: random.Random,
    result: LoadResult,
) -> None:
    """Run the users against the instances (and the faults), then count and check; the
    generator's own connections (`url`, untagged) are not among those killed."""
    store = Store.from_url(url)
    users = result.users
    directors = max(2, users // 25)
    try:
        codes = [store.accounts.invite(DIRECTORS[i % len(DIRECTORS)]) for i in range(directors)]
        generator = Generator(api, servers, THINK)
        scripts: list[Coroutine[Any, Any, None]] = [
            generator.director(FIRST_USER + i, codes[i], i % 3 == 0, random.Random(rng.random()))
            for i in range(directors)
        ] + [
            generator.parent(FIRST_USER + i, random.Random(rng.random()))
            for i in range(directors, users)
        ]
        rng.shuffle(scripts)
        chaos = (
            asyncio.ensure_future(_faults(url, tag, servers, result)) if result.faults else None
        )
        cpu, started = time.process_time(), time.perf_counter()
        try:
            await _arrive(scripts, result.arrivals, result.active)
            if chaos is not None:
                # The restart is part of the run: it must have happened before counting.
                while result.restarts == 0 and not chaos.done():
                    await asyncio.sleep(0.1)
        finally:
            if chaos is not None:
                chaos.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await chaos
            await generator.close()
        result.seconds = time.perf_counter() - started
        result.generator_cpu = time.process_time() - cpu
        await asyncio.sleep(2.0)  # late duplicates, if any, arrive now
        count(generator, result)
        with store.session() as session:
            result.done_entries = int(
                session.execute(
                    text("SELECT count(*) FROM audit_entries WHERE outcome = 'done'")
                ).scalar_one()
            )
    finally:
        store.dispose()
    # Each done entry must be a confirmation pressed: more is a change executed twice.
    result.double_executions += max(0, result.done_entries - result.confirmations)


async def _arrive(scripts: list[Coroutine[Any, Any, None]], arrivals: float, active: int) -> None:
    """Start one user every 1/arrivals seconds, never more than `active` at once."""
    slots = asyncio.Semaphore(active)

    async def talk(script: Coroutine[Any, Any, None]) -> None:
        try:
            await script
        finally:
            slots.release()

    running = []
    for script in scripts:
        await slots.acquire()
        running.append(asyncio.ensure_future(talk(script)))
        await asyncio.sleep(1 / arrivals)
    await asyncio.gather(*running)


async def _faults(url: str, tag: str, servers: list[Instance], result: LoadResult) -> None:
    """Kill the instances' database connections every second; restart the last instance once
    (SIGTERM, then the same command on the same port), while users keep talking."""

    async def kill_every_second() -> None:
        while True:
            await asyncio.sleep(1.0)
            result.killed_connections += await asyncio.to_thread(kill_connections, url, tag)

    killing = asyncio.ensure_future(kill_every_second())
    try:
        await asyncio.sleep(RESTART_AFTER)
        stopping = time.monotonic()
        await servers[-1].stop()
        await servers[-1].start()
        result.restart_seconds = time.monotonic() - stopping
        result.restarts += 1
        await killing
    finally:
        killing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await killing


def run_load_command(
    database: str, *, users: int, faults: bool, instances: int, arrivals: float = ARRIVALS
) -> int:
    """Entry point of `python -m bot bench load`."""
    # SIGTERM (a CI timeout) unwinds like Ctrl-C: the instances are stopped, the schema dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = asyncio.run(
        run_load(database, users=users, faults=faults, instances=instances, arrivals=arrivals)
    )
    print(format_load(result))
    return 0 if result.clean else 1
