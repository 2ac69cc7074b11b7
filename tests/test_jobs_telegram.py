"""Scheduled jobs through the real PTB stack: PTB's JobQueue ticks (every JOB_TICK_SECONDS, a
few hundredths here), the ticker runs the due jobs of the fake clock and the fake Bot API
sees the edits and messages a user would see. A failed delivery costs that message only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from telegram.ext import Application

from bot.channels.telegram.app import build_application, polling_session
from bot.channels.telegram.fake_bot_api import FAKE_TOKEN, ApiError, FakeBotApi
from bot.channels.telegram.flow import FloodGuard
from bot.core import jobs
from bot.core.assistant import Assistant
from bot.core.job_runner import JobRunner
from bot.core.jobs import Delivery
from bot.storage.store import Store
from tests.support import DEMO, DIRECTOR, OTHER_DIRECTOR, Clock
from tests.telegram_support import (
    Bot,
    FloodClock,
    bot_settings,
    labels,
    running_cli,
    stop_with_sigterm,
)
from tests.web_support import PUBLIC_URL, SECRET, free_port

TICK = 0.05  # JOB_TICK_SECONDS in these tests
TICKER_LOG = "bot.channels.telegram.ticker"


class CountingRunner(JobRunner):
    """The real runner, counting its ticks; the first `broken` ticks fail as a database
    that is away would."""

    def __init__(self, assistant: Assistant, broken: int = 0) -> None:
        super().__init__(assistant.engine, assistant.clock, worker="telegram-test")
        self.ticks = 0
        self.broken = broken
        self._lock = threading.Lock()

    def run_due(self, limit: int = 20) -> list[Delivery]:
        """Count the tick, then fail or run the due jobs."""
        with self._lock:
            self.ticks += 1
            if self.broken:
                self.broken -= 1
                raise RuntimeError("la base de données est injoignable")
        return super().run_due(limit)

    async def ticks_after(self, count: int) -> None:
        """Until `count` more ticks have started and the last one has ended."""
        target = self.ticks + count + 1
        async with asyncio.timeout(10):
            while self.ticks < target:
                await asyncio.sleep(TICK / 2)


@contextlib.asynccontextmanager
async def ticking_bot(
    store: Store, assistant: Assistant, clock: Clock, runner: CountingRunner
) -> AsyncIterator[Bot]:
    """The production application polling the fake Bot API, its JobQueue ticking fast."""
    async with FakeBotApi() as api:
        flood_clock = FloodClock()
        application = build_application(
            bot_settings(api, job_tick_seconds=TICK),
            assistant,
            flood_guard=FloodGuard(clock=flood_clock),
            jobs=runner,
        )
        async with polling_session(application):
            yield Bot(api, application, store, assistant, clock, flood_clock)


def _scheduled_names(application: Application) -> list[str]:
    # Reading job_queue warns "No `JobQueue` set up" when there is none: an error here.
    assert application.job_queue is not None
    return [job.name or "" for job in application.job_queue.jobs()]


# -- a confirmation left unanswered -------------------------------------------------------


@pytest.mark.asyncio
async def test_an_unanswered_confirmation_loses_its_buttons_when_it_expires(
    store: Store, assistant: Assistant, clock: Clock
) -> None:
    def blocked() -> list[bool]:
        return [u.blocked for u in store.directory.users(DEMO, profiles=["Relative"])]

    before = blocked()
    runner = CountingRunner(assistant)
    async with ticking_bot(store, assistant, clock, runner) as bot:
        assert _scheduled_names(bot.app) == ["scheduled-jobs"]
        director = bot.api.user(4001, "Claire")
        await bot.link(director, DIRECTOR)
        shown = await bot.ask(director, "bloque les parents")
        assert "Confirmer" in labels(shown)
        chat, message_id = director["id"], shown.result["message_id"]

        clock.advance(minutes=9)  # still within its ten minutes: left alone
        await runner.ticks_after(3)
        assert bot.api.calls_of("editMessageText", chat_id=chat) == []
        assert "Confirmer" in labels(shown)

        clock.advance(minutes=2)
        edit = await bot.api.wait_call("editMessageText", chat_id=chat)
        assert edit.params["message_id"] == message_id
        assert edit.params["text"].startswith("⌛") and "expiré" in edit.params["text"]
        assert not edit.params.get("reply_markup")
        seen = bot.api.messages[(chat, message_id)]
        assert "reply_markup" not in seen and "expiré sans confirmation" in seen["text"]
        with pytest.raises(LookupError):  # nothing left to press
            bot.api.press(director, seen, "Confirmer")

        await runner.ticks_after(3)  # edited once, not at every tick
        assert len(bot.api.calls_of("editMessageText", chat_id=chat)) == 1
    assert [e.outcome for e in store.audit.entries() if e.action == "action.block"] == ["expired"]
    assert blocked() == before and not all(before)


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_ticker_survives_a_failed_delivery_and_a_failed_tick(
    store: Store, assistant: Assistant, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=TICKER_LOG)
    runner = CountingRunner(assistant, broken=2)
    async with ticking_bot(store, assistant, clock, runner) as bot:
        first, second = bot.api.user(4101, "Claire"), bot.api.user(4102, "Marc")
        await bot.link(first, DIRECTOR)
        await bot.link(second, OTHER_DIRECTOR)
        lost = await bot.ask(first, "bloque les parents")
        kept = await bot.ask(second, "bloque les parents")
        assert "Confirmer" in labels(lost) and "Confirmer" in labels(kept)
        await runner.ticks_after(1)  # the two broken ticks are behind us
        assert runner.broken == 0

        # Telegram fails the first edit (the first director's, due first) with a 500.
        bot.api.fail_next("editMessageText", 500, "Internal Server Error")
        mark = bot.api.mark()
        clock.advance(minutes=11)
        edited = await bot.api.wait_call("editMessageText", chat_id=second["id"], after=mark)
        assert "expiré" in edited.params["text"]
        assert "reply_markup" not in bot.api.messages[(second["id"], kept.result["message_id"])]

        # At most once: the failed edit is not tried again, its job is done all the same.
        await runner.ticks_after(3)
        assert len(bot.api.calls_of("editMessageText", chat_id=first["id"], after=mark)) == 1
        # Every job about people ran (the nightly purge waits for its night).
        assert {j.status for j in store.jobs.jobs() if j.kind != "maintenance.purge"} == {"done"}

        # And the ticker goes on: a new confirmation of the first director expires as usual.
        again = await bot.ask(first, "bloque les parents")
        mark = bot.api.mark()
        clock.advance(minutes=11)
        edit = await bot.api.wait_call("editMessageText", chat_id=first["id"], after=mark)
        assert edit.params["message_id"] == again.result["message_id"]
        assert _scheduled_names(bot.app) == ["scheduled-jobs"]
    logged = [r.getMessage() for r in caplog.records if r.name == TICKER_LOG]
    assert logged.count("scheduled jobs could not be run this tick") == 2
    assert logged.count("a scheduled job's message could not be delivered") == 1


@pytest.mark.asyncio
async def test_a_message_to_a_chat_that_blocked_the_bot_is_dropped_not_retried(
    store: Store, assistant: Assistant, clock: Clock
) -> None:
    runner = CountingRunner(assistant)
    async with ticking_bot(store, assistant, clock, runner) as bot:
        director = bot.api.user(4201, "Claire")
        await bot.link(director, DIRECTOR)
        assert "activé" in (await bot.ask(director, "/rappels")).params["text"]
        bot.api.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
        mark = bot.api.mark()
        clock.now = jobs.next_monday(clock.now)
        # The lead line failed; the checklist after it still went, and nothing more.
        await bot.api.wait_calls("sendMessage", 2, chat_id=director["id"], after=mark)
        await runner.ticks_after(3)
        calls = bot.api.calls_of("sendMessage", chat_id=director["id"], after=mark)
        assert "Rappel du lundi" in calls[0].params["text"]
        assert isinstance(calls[0].result, ApiError)
        assert all(not isinstance(c.result, ApiError) for c in calls[1:])
        assert all("Rappel du lundi" not in c.params["text"] for c in calls[1:])
        assert "Rentrée" in "\n".join(c.params["text"] for c in calls[1:])
        # The next Monday is scheduled all the same.
        pending = store.jobs.jobs(status="pending")
        weekly = [j.due_at for j in pending if j.kind == "reminder.weekly"]
        assert weekly == [clock.now + timedelta(days=7)]


# -- the production commands -----------------------------------------------------------------


def _due_gar_check(database: Path, user_id: int) -> None:
    """Link a Telegram user to the director and put a GAR check due now in the database the
    running bot uses (its embedded default, a SQLite file, migrated and seeded before the bot
    polls or registers its webhook)."""
    store = Store.from_url(f"sqlite:///{database}")
    try:
        key = f"telegram:{user_id}"
        now = datetime.now(UTC)
        store.accounts.redeem(key, store.accounts.invite(DIRECTOR, now), now)
        payload = jobs.GarCheck(key, DIRECTOR, DEMO)
        store.jobs.schedule(
            jobs.kind_of(payload),
            jobs.payload_out(payload),
            jobs.gar_key(key, DEMO, now.date()),
            key,
            now - timedelta(seconds=1),
            now,
        )
    finally:
        store.dispose()


@pytest.mark.asyncio
@pytest.mark.parametrize("command", ["run", "webhook"])
async def test_the_started_bot_ticks_without_the_no_jobqueue_warning(
    tmp_path: Path, command: str
) -> None:
    extra = {}
    if command == "webhook":
        port = free_port()
        extra = {"WEBHOOK_URL": PUBLIC_URL, "WEBHOOK_SECRET": SECRET, "PORT": str(port)}
    async with (
        FakeBotApi() as api,
        running_cli(
            tmp_path,
            command,
            TELEGRAM_TOKEN=FAKE_TOKEN,
            TELEGRAM_API_URL=api.base_url,
            JOB_TICK_SECONDS="0.2",
            **extra,
        ) as process,
    ):
        await api.wait_call("getUpdates" if command == "run" else "setWebhook", timeout=60)
        _due_gar_check(tmp_path / "assistant-rentree.db", 7301)
        check = await api.wait_call("sendMessage", chat_id=7301, timeout=30)
        assert "Vérification GAR" in check.params["text"]
        stderr = await stop_with_sigterm(process)
    assert process.returncode == 0, stderr
    assert "JobQueue" not in stderr and "Traceback" not in stderr, stderr
