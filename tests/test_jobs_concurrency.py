"""Scheduled jobs run exactly once across processes: several OS processes over one PostgreSQL
database tick at the same moment (released together by a barrier) over the same due jobs of
every kind whose run changes something. Each job is claimed, run and completed once: one
`expired` audit entry per expired confirmation, one next-Monday job per weekly reminder, and
no message delivered twice."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.app import DEMO_SCHOOL
from bot.core import jobs
from bot.core.assistant import Assistant
from bot.core.job_runner import JobRunner
from bot.core.jobs import EditMessage, SendMessage
from bot.settings import Settings
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from intents.kb import html_to_text
from tests.conftest import postgres_schema
from tests.support import DEMO, DIRECTOR, Clock, Conversation, shared_kb_and_matcher

WORKERS = 4
PER_KIND = 50
TIMEOUT = 180  # seconds a worker may take, start-up included

# Monday 24 August 2026, 7:49 in Paris: the confirmations are shown then; at 8:00 (NOW) they
# have expired, the GAR checks are due and so is the Monday checklist.
SHOWN = datetime(2026, 8, 24, 5, 49, tzinfo=UTC)
NOW = datetime(2026, 8, 24, 6, 0, tzinfo=UTC)
NEXT_MONDAY = datetime(2026, 8, 31, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Sent:
    """One delivery as a worker reports it (picklable, plain text)."""

    worker: int
    kind: str  # "edit" or "send"
    target: str  # the edited message's reference, or the speaker key
    text: str


def _tick_until_idle(number: int, url: str, barrier: Any, outbox: Any) -> None:
    """One instance: waits for the others, then ticks until a tick claims nothing."""
    kb, matcher = shared_kb_and_matcher()
    store = Store.from_url(url)
    assistant = Assistant(Settings(), store, kb, matcher, clock=lambda: NOW)
    runner = JobRunner(assistant.engine, lambda: NOW, worker=f"worker-{number}")
    sent: list[Sent] = []
    try:
        barrier.wait(timeout=TIMEOUT)
        while deliveries := runner.run_due(limit=5):
            for delivery in deliveries:
                if isinstance(delivery, EditMessage):
                    sent.append(Sent(number, "edit", delivery.ref, delivery.text or ""))
                elif isinstance(delivery, SendMessage):
                    text = html_to_text(delivery.reply.text)
                    sent.append(Sent(number, "send", delivery.speaker_key, text))
        outbox.put(sent)
    except BaseException as error:  # the parent must hear of it, not wait for a timeout
        outbox.put(repr(error))
        raise
    finally:
        store.dispose()


@pytest.fixture
def due_jobs() -> Iterator[tuple[str, Store]]:
    """A PostgreSQL schema with the demo school and PER_KIND due jobs of each kind."""
    with postgres_schema() as url:
        store = Store.from_url(url)
        try:
            store.upgrade()
            import_school(store, DEMO_SCHOOL)
            kb, matcher = shared_kb_and_matcher()
            clock = Clock()
            clock.now = SHOWN
            assistant = Assistant(Settings(), store, kb, matcher, clock=clock)
            services = assistant.engine.services
            for n in range(PER_KIND):
                # Through the real conversation: a shown confirmation (its expiry scheduled),
                # and /rappels (the Monday checklist scheduled).
                shown = Conversation(assistant, DIRECTOR, key=f"test:expire:{n}")
                assert "Confirmer" in shown.say("bloque les parents").buttons
                weekly = Conversation(assistant, DIRECTOR, key=f"test:weekly:{n}")
                assert "activé" in weekly.say("/rappels").text
                key = f"test:gar:{n}"
                with services.transaction():
                    payload = jobs.GarCheck(key, DIRECTOR, DEMO)
                    jobs.schedule(
                        services, payload, jobs.gar_key(key, DEMO, NOW.date()), NOW, SHOWN
                    )
            yield url, store
        finally:
            store.dispose()


def test_due_jobs_ticked_by_four_processes_at_once_run_exactly_once(
    due_jobs: tuple[str, Store],
) -> None:
    url, store = due_jobs
    scheduled = store.jobs.jobs(status="pending")
    assert Counter(j.kind for j in scheduled) == {
        "confirmation.expire": PER_KIND,
        "check.gar": PER_KIND,
        "reminder.weekly": PER_KIND,
    }
    assert all(j.due_at <= NOW for j in scheduled)

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    outbox = context.Queue()
    processes = [
        context.Process(target=_tick_until_idle, args=(n, url, barrier, outbox), daemon=True)
        for n in range(WORKERS)
    ]
    for process in processes:
        process.start()
    try:
        reports = [outbox.get(timeout=TIMEOUT) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    assert all(isinstance(r, list) for r in reports), reports
    sent: list[Sent] = [item for report in reports for item in report]

    # Every job ran and completed once; nothing failed, nothing is left running.
    by_id = {j.id: j for j in store.jobs.jobs()}
    for job in scheduled:
        assert by_id[job.id].status == "done", by_id[job.id]
        assert by_id[job.id].attempts == 1, by_id[job.id]
    # One next-Monday job per weekly reminder, and nothing else left to run.
    # Every process asked for the nightly purge: one row for the night, whoever asked.
    waiting = store.jobs.jobs(status="pending")
    assert [j.kind for j in waiting].count("maintenance.purge") == 1
    pending = [j for j in waiting if j.kind != "maintenance.purge"]
    assert sorted(j.owner for j in pending) == sorted(f"test:weekly:{n}" for n in range(PER_KIND))
    assert {j.due_at for j in pending} == {NEXT_MONDAY}
    assert len(store.jobs.jobs()) == 4 * PER_KIND + 1

    # One `expired` audit entry per confirmation, none executed.
    outcomes = Counter(e.outcome for e in store.audit.entries() if e.action == "action.block")
    assert outcomes == {"expired": PER_KIND}, outcomes

    # No delivery twice: one edit per confirmation message, one GAR message per director,
    # one Monday checklist per director, each from one process.
    edits = Counter(s.target for s in sent if s.kind == "edit")
    assert len(edits) == PER_KIND and set(edits.values()) == {1}, edits
    assert all("expiré" in s.text for s in sent if s.kind == "edit")
    gar = Counter(s.target for s in sent if "Vérification GAR" in s.text)
    assert sorted(gar) == sorted(f"test:gar:{n}" for n in range(PER_KIND))
    assert set(gar.values()) == {1}, gar
    weekly = Counter(s.target for s in sent if "Rappel du lundi" in s.text)
    assert sorted(weekly) == sorted(f"test:weekly:{n}" for n in range(PER_KIND))
    assert set(weekly.values()) == {1}, weekly
    for speaker in weekly:
        assert len({s.worker for s in sent if s.target == speaker}) == 1
    # The processes did share the work (otherwise nothing concurrent was tested).
    busy = Counter(s.worker for s in sent)
    assert len(busy) >= 2, busy
