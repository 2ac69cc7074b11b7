"""Exactly once across processes: several OS processes over one PostgreSQL database press the
same « Confirmer », redeem the same link code, or write one speaker's conversation state at
the same moment (released together by a barrier). One executes; the others are told, in
French, that it was already handled. And a change commits with its audit entry or not at all.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from typing import Any

import pytest

from bot.app import DEMO_SCHOOL
from bot.core.assistant import Assistant
from bot.core.messages import APOLOGY, Incoming
from bot.settings import Settings
from bot.storage.audit import AuditLog
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from intents.kb import html_to_text
from tests.conftest import postgres_schema
from tests.support import DEMO, DIRECTOR, Conversation, shared_kb_and_matcher

WORKERS = 4
TRIALS = 10
TIMEOUT = 120  # seconds a worker may take to answer, start-up included

ALREADY_HANDLED = "n'est plus en attente : elle a déjà été traitée"
CODE_USED = "Ce code a déjà été utilisé"


def _worker(url: str, inbox: Any, outbox: Any, barrier: Any) -> None:
    """One process of the assistant: handles each job it is given at the barrier's signal."""
    kb, matcher = shared_kb_and_matcher()
    store = Store.from_url(url)
    assistant = Assistant(Settings(), store, kb, matcher)
    outbox.put("ready")
    while (job := inbox.get()) is not None:
        key, login, fields = job
        barrier.wait(timeout=TIMEOUT)
        outcome = assistant.handle(Incoming(key, private_chat=True, **fields), login=login)
        outbox.put("\n".join(html_to_text(reply.text) for reply in outcome.replies))
    store.dispose()


@dataclass
class Pool:
    """WORKERS processes of the assistant over one PostgreSQL schema, and a store on it."""

    store: Store
    assistant: Assistant
    inboxes: list[Any]
    outbox: Any
    processes: list[SpawnProcess]

    def at_once(self, jobs: list[tuple[str, str | None, dict[str, str]]]) -> list[str]:
        """Give each worker its job, released together; their answers (in no order)."""
        assert len(jobs) == len(self.inboxes)
        for inbox, job in zip(self.inboxes, jobs, strict=True):
            inbox.put(job)
        return [self.outbox.get(timeout=TIMEOUT) for _ in jobs]

    def fresh_school(self) -> None:
        import_school(self.store, DEMO_SCHOOL)

    def outcomes(self, action: str, since: int) -> list[str]:
        """The outcomes of the audit entries of that action written after entry `since`."""
        return [
            e.outcome for e in self.store.audit.entries() if e.id > since and e.action == action
        ]

    def last_entry(self) -> int:
        entries = self.store.audit.entries()
        return entries[-1].id if entries else 0


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    with postgres_schema() as url:
        store = Store.from_url(url)
        store.upgrade()
        import_school(store, DEMO_SCHOOL)
        kb, matcher = shared_kb_and_matcher()
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(WORKERS)
        inboxes = [context.Queue() for _ in range(WORKERS)]
        outbox = context.Queue()
        processes = [
            context.Process(target=_worker, args=(url, inbox, outbox, barrier), daemon=True)
            for inbox in inboxes
        ]
        for process in processes:
            process.start()
        try:
            assert [outbox.get(timeout=TIMEOUT) for _ in processes] == ["ready"] * WORKERS
            yield Pool(
                store, Assistant(Settings(), store, kb, matcher), inboxes, outbox, processes
            )
        finally:
            for inbox in inboxes:
                inbox.put(None)
            for process in processes:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
            store.dispose()


# -- one « Confirmer » pressed by several processes at once ----------------------------------

ACTIONS = {
    "action.block": "bloque les parents",
    "action.detach_teacher": "détache Hugo Lambert, il est reparti à Pasteur",
    "action.remove_manual_account": "supprime le compte de Martine Duhamel",
}


@pytest.mark.parametrize("intent", sorted(ACTIONS))
def test_one_confirmation_pressed_at_once_executes_once(pool: Pool, intent: str) -> None:
    executions = []
    for trial in range(TRIALS):
        pool.fresh_school()
        key = f"test:{DIRECTOR}:{intent}:{trial}:{os.getpid()}"
        director = Conversation(pool.assistant, DIRECTOR, key=key)
        seen = director.say(ACTIONS[intent])
        assert seen.intent == intent and "Confirmer" in seen.buttons, seen.text
        since = pool.last_entry()
        press = {"press": director.button_id("Confirmer")}
        answers = pool.at_once([(key, DIRECTOR, press)] * WORKERS)
        outcomes = pool.outcomes(intent, since)
        executions.append(outcomes.count("done"))
        assert outcomes == ["done"], f"trial {trial}: {outcomes}"
        told = [a for a in answers if ALREADY_HANDLED in a]
        assert len(told) == WORKERS - 1, f"trial {trial}: {answers}"
        assert all(APOLOGY not in a for a in answers)
    assert executions == [1] * TRIALS


# -- one link code redeemed by several processes at once -------------------------------------


def test_one_link_code_redeemed_at_once_links_once(pool: Pool) -> None:
    for trial in range(TRIALS):
        code = pool.store.accounts.invite(DIRECTOR)
        keys = [f"telegram:{trial}{n}{os.getpid()}" for n in range(WORKERS)]
        answers = pool.at_once([(key, None, {"text": f"/connexion {code}"}) for key in keys])
        linked = [link for link in pool.store.accounts.list_links() if link.speaker_key in keys]
        assert len(linked) == 1, f"trial {trial}: {len(linked)} links, {answers}"
        assert sum(CODE_USED in a for a in answers) == WORKERS - 1, f"trial {trial}: {answers}"


# -- one update delivered to several processes at once --------------------------------------


def test_one_update_delivered_to_several_instances_is_answered_once(pool: Pool) -> None:
    """Telegram retries a webhook whose 200 was lost, possibly to another instance: the same
    update_id handled by every process at once gets one answer and one change."""
    for trial in range(TRIALS):
        pool.fresh_school()
        key = f"test:{DIRECTOR}:redelivered:{trial}:{os.getpid()}"
        director = Conversation(pool.assistant, DIRECTOR, key=key)
        director.say("bloque les parents")
        since = pool.last_entry()
        press = {"press": director.button_id("Confirmer"), "update_id": 7000 + trial}
        answers = pool.at_once([(key, DIRECTOR, press)] * WORKERS)  # type: ignore[list-item]
        assert sum(bool(a) for a in answers) == 1, f"trial {trial}: {answers}"
        assert any("C'est fait" in a for a in answers), answers
        assert pool.outcomes("action.block", since) == ["done"]
        # Delivered once more, later: still nothing more.
        again = pool.at_once([(key, DIRECTOR, press)] * WORKERS)  # type: ignore[list-item]
        assert again == [""] * WORKERS
        assert pool.outcomes("action.block", since) == ["done"]


# -- one speaker's state written by several processes at once --------------------------------


def test_no_shown_proposal_is_lost_when_one_speaker_writes_at_once(pool: Pool) -> None:
    """Each process shows a proposal; one stays pending and every other one is superseded
    (audited, its buttons taken away): none vanishes silently."""
    pool.fresh_school()
    for trial in range(TRIALS):
        key = f"test:{DIRECTOR}:proposals:{trial}:{os.getpid()}"
        Conversation(pool.assistant, DIRECTOR, key=key).say("bonjour")  # a stored state
        since = pool.last_entry()
        answers = pool.at_once([(key, DIRECTOR, {"text": "bloque les parents"})] * WORKERS)
        assert all("bloquer" in a.lower() and APOLOGY not in a for a in answers), answers
        outcomes = pool.outcomes("action.block", since)
        assert outcomes == ["superseded"] * (WORKERS - 1), f"trial {trial}: {outcomes}"
        assert pool.store.conversations.get(key).get("pending") is not None


# -- one ticket answered by several eRuns at once ----------------------------------------------


def test_one_ticket_answered_by_several_eruns_at_once_is_answered_once(pool: Pool) -> None:
    """Every eRun of the circonscription has pressed « Répondre » on the same question and
    sends a reply at the same moment: the asker receives one answer."""
    for trial in range(TRIALS):
        asker = f"test:asker:{trial}:{os.getpid()}"
        Conversation(pool.assistant, None, key=asker).say("menu de la cantine de la semaine ?")
        [ticket] = [t for t in pool.store.tickets.open_in("Lille 1") if t.speaker_key == asker]
        keys = [f"test:erun:{trial}:{n}:{os.getpid()}" for n in range(WORKERS)]
        for key in keys:
            erun = Conversation(pool.assistant, "erun.lille1", key=key)
            erun.say("/triage")
            group = erun.last.replies[0].buttons[0]  # type: ignore[union-attr]
            erun.press(group.label)
            assert "Écrivez votre réponse" in erun.press("Répondre").text
        answers = pool.at_once(
            [(key, "erun.lille1", {"text": f"réponse {n}"}) for n, key in enumerate(keys)]
        )
        sent = [a for a in answers if "Réponse envoyée" in a]
        assert len(sent) == 1, f"trial {trial}: {answers}"
        assert sum("déjà été traitées" in a for a in answers) == WORKERS - 1, answers
        deliveries = [j for j in pool.store.jobs.jobs() if j.dedupe_key == f"answer:{ticket.id}"]
        assert len(deliveries) == 1 and deliveries[0].payload["speaker_key"] == asker


# -- the change and its audit entry commit together -----------------------------------------


def test_a_change_is_rolled_back_when_its_audit_entry_cannot_be_written(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.from_url(database_url)
    try:
        store.upgrade()
        import_school(store, DEMO_SCHOOL)
        kb, matcher = shared_kb_and_matcher()
        director = Conversation(Assistant(Settings(), store, kb, matcher), DIRECTOR)
        director.say("bloque les parents")
        record = AuditLog.record

        def failing(self: AuditLog, *args: Any, **kwargs: Any) -> object:
            if kwargs.get("outcome") == "done":
                raise RuntimeError("the audit log is unreachable")
            return record(self, *args, **kwargs)

        monkeypatch.setattr(AuditLog, "record", failing)
        seen = director.press("Confirmer")
        assert APOLOGY in seen.text
        parents = store.directory.users(DEMO, profiles=["Relative"])
        assert not all(u.blocked for u in parents), "the change was kept without its entry"
        assert [e.outcome for e in store.audit.entries() if e.action == "action.block"] == []
        # Nothing was kept, the confirmation included: pressed again, it runs once.
        monkeypatch.setattr(AuditLog, "record", record)
        assert "C'est fait" in director.press("Confirmer", earlier=True).text
        assert all(u.blocked for u in store.directory.users(DEMO, profiles=["Relative"]))
        assert [e.outcome for e in store.audit.entries() if e.action == "action.block"] == ["done"]
    finally:
        store.dispose()
