"""The core runs off PTB's event loop: a slow core call (a slow database) of one user delays
nobody else, and one user's messages are still answered in the order they were sent."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import event

from bot.app import DEMO_SCHOOL
from bot.channels.telegram.app import build_application, polling_session
from bot.channels.telegram.fake_bot_api import FakeBotApi
from bot.channels.telegram.flow import PerUserUpdateProcessor
from bot.channels.telegram.html import split_html
from bot.core.assistant import Assistant
from bot.core.messages import Incoming, Outcome
from bot.logs import ContextFilter
from bot.settings import Settings
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from tests.conftest import postgres_schema
from tests.support import Clock, shared_kb_and_matcher
from tests.telegram_support import bot_settings

pytestmark = pytest.mark.asyncio

SLOW = 1.5
ALICE, BRUNO = 610_000_001, 610_000_002


class SlowFor:
    """The real core, made slow (in its worker thread) for the messages `slow` picks."""

    def __init__(self, assistant: Assistant, slow: Any) -> None:
        self.assistant = assistant
        self.slow = slow
        self.handled: list[str] = []
        # The first reply's first chunk to each message, as it is sent.
        self.answers: dict[str, str] = {}
        self.threads: set[str] = set()

    def handle(self, incoming: Incoming) -> Outcome:
        """Sleep first when the message is a slow one, then ask the real core."""
        self.threads.add(threading.current_thread().name)
        if self.slow(incoming):
            time.sleep(SLOW)
        said = incoming.text or incoming.press or ""
        self.handled.append(said)
        outcome = self.assistant.handle(incoming)
        self.answers[said] = split_html(outcome.replies[0].text)[0]
        return outcome

    def delivered(self, speaker_key: str, key: str, message: str) -> None:
        """Passed on to the real core."""
        self.assistant.delivered(speaker_key, key, message)


@asynccontextmanager
async def polling(core: Any, **options: Any) -> AsyncIterator[tuple[FakeBotApi, Any]]:
    """The production Application around `core`, polling a fake Bot API."""
    async with FakeBotApi() as api:
        application = build_application(bot_settings(api), core, **options)
        async with polling_session(application):
            yield api, application


async def test_a_slow_core_call_of_one_user_does_not_delay_another(
    assistant: Assistant,
) -> None:
    core = SlowFor(assistant, lambda incoming: incoming.speaker_key == f"telegram:{ALICE}")
    async with polling(core, core_workers=2) as (api, _):
        alice, bruno = api.user(ALICE, "Alice"), api.user(BRUNO, "Bruno")
        api.send_text(alice, "bonjour")
        await asyncio.sleep(0.2)  # Alice's message is in the core, asleep
        started = time.perf_counter()
        api.send_text(bruno, "j'ai oublié mon mot de passe")
        answer = await api.wait_call("sendMessage", chat_id=BRUNO, timeout=SLOW)
        assert answer.at - started < SLOW / 2
        # Alice is still waiting for her (slow) answer, which then comes.
        assert not api.calls_of("sendMessage", chat_id=ALICE)
        await api.wait_call("sendMessage", chat_id=ALICE, timeout=2 * SLOW)
    assert core.threads and all(name.startswith("core") for name in core.threads)


async def test_the_event_loop_keeps_running_during_a_core_call(assistant: Assistant) -> None:
    core = SlowFor(assistant, lambda incoming: True)
    async with polling(core) as (api, _):
        api.send_text(api.user(ALICE, "Alice"), "bonjour")
        answer = asyncio.ensure_future(
            api.wait_call("sendMessage", chat_id=ALICE, timeout=2 * SLOW)
        )
        # On the loop, the core's sleep would hold one of these ticks back by SLOW seconds.
        longest, before = 0.0, time.perf_counter()
        while not answer.done():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            longest, before = max(longest, now - before), now
        await answer
        assert longest < SLOW / 3


async def test_two_messages_of_one_user_are_answered_in_order(assistant: Assistant) -> None:
    # The first message is slow, the second fast, with threads to spare: order still holds.
    core = SlowFor(assistant, lambda incoming: incoming.text == "/aide")
    async with polling(core, core_workers=4) as (api, application):
        alice = api.user(ALICE, "Alice")
        api.send_text(alice, "/aide")
        api.send_text(alice, "merci beaucoup")
        first, second = await api.wait_calls("sendMessage", 2, chat_id=ALICE, timeout=3 * SLOW)
        processor = application.update_processor
        assert isinstance(processor, PerUserUpdateProcessor)
        await asyncio.wait_for(application.update_queue.join(), timeout=5)
        # Nothing kept per user once their updates are done.
        assert processor.pending_senders() == 0
    assert core.handled == ["/aide", "merci beaucoup"]
    assert core.answers["/aide"] != core.answers["merci beaucoup"]
    assert [first.params["text"], second.params["text"]] == [
        core.answers["/aide"],
        core.answers["merci beaucoup"],
    ]


async def test_the_observer_hears_every_core_call_with_its_duration(
    assistant: Assistant,
) -> None:
    heard: list[tuple[str, int, float]] = []

    def observer(incoming: Incoming, outcome: Outcome, seconds: float) -> None:
        heard.append((incoming.text or "", len(outcome.replies), seconds))

    async with polling(assistant, observer=observer) as (api, _):
        alice = api.user(ALICE, "Alice")
        api.send_text(alice, "bonjour")
        await api.wait_call("sendMessage", chat_id=ALICE)
    assert heard and heard[0][0] == "bonjour" and heard[0][1] >= 1
    assert 0 < heard[0][2] < 5


async def test_a_failing_observer_costs_nobody_an_answer(assistant: Assistant) -> None:
    def observer(incoming: Incoming, outcome: Outcome, seconds: float) -> None:
        raise RuntimeError("metrics down")

    async with polling(assistant, observer=observer) as (api, _):
        api.send_text(api.user(ALICE, "Alice"), "bonjour")
        call = await api.wait_call("sendMessage", chat_id=ALICE)
    assert "problème technique" not in call.params["text"]


# -- a really slow database, on PostgreSQL -------------------------------------------------


@pytest.fixture
def slow_postgres_store() -> Iterator[tuple[Store, set[str]]]:
    """A PostgreSQL store whose queries sleep while they carry one of the `slow` keys."""
    with postgres_schema() as url:
        store = Store.from_url(url)
        store.upgrade()
        import_school(store, DEMO_SCHOOL)
        slow: set[str] = set()

        @event.listens_for(store.engine, "before_cursor_execute")
        def _sleep(*args: Any) -> None:
            parameters = args[3]
            values = parameters.values() if isinstance(parameters, dict) else [parameters]
            if any(str(value) in slow for value in values):
                time.sleep(SLOW)

        try:
            yield store, slow
        finally:
            store.dispose()


async def test_a_slow_query_of_one_user_does_not_delay_another_on_postgres(
    slow_postgres_store: tuple[Store, set[str]],
) -> None:
    store, slow = slow_postgres_store
    kb, matcher = shared_kb_and_matcher()
    assistant = Assistant(Settings(), store, kb, matcher, clock=Clock())
    async with FakeBotApi() as api:
        settings = bot_settings(api).model_copy(update={"database_url": "postgresql://x/y"})
        application = build_application(settings, assistant)
        async with polling_session(application):
            alice, bruno = api.user(ALICE, "Alice"), api.user(BRUNO, "Bruno")
            slow.add(f"telegram:{ALICE}")
            api.send_text(alice, "bonjour")
            await asyncio.sleep(0.2)
            started = time.perf_counter()
            api.send_text(bruno, "bonjour")
            answer = await api.wait_call("sendMessage", chat_id=BRUNO, timeout=SLOW)
            assert answer.at - started < SLOW / 2
            assert not api.calls_of("sendMessage", chat_id=ALICE)
            slow.clear()
            await api.wait_call("sendMessage", chat_id=ALICE, timeout=3 * SLOW)


async def test_the_core_logs_with_the_update_id_and_a_hashed_sender(
    assistant: Assistant,
) -> None:
    records: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = records.append  # type: ignore[method-assign]
    capture.addFilter(ContextFilter())
    logger = logging.getLogger("tests.off_loop")
    logger.addHandler(capture)

    class Talkative(SlowFor):
        def handle(self, incoming: Incoming) -> Outcome:
            logger.warning("in the core")
            return super().handle(incoming)

    try:
        async with polling(Talkative(assistant, lambda incoming: False)) as (api, _):
            update = api.send_text(api.user(ALICE, "Alice"), "bonjour")
            await api.wait_call("sendMessage", chat_id=ALICE)
    finally:
        logger.removeHandler(capture)
    (record,) = records
    assert record.threadName.startswith("core")
    assert record.update_id == update["update_id"]
    assert record.user and str(ALICE) not in str(record.user)
