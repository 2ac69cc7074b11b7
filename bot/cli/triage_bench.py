"""`bench triage`: an eRun's /triage over many open questions, end to end in the core."""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime

from bot.settings import Settings

ROUNDS = 5


def run_triage_bench(settings: Settings, tickets: int) -> int:
    """Open `tickets` questions in the demo circonscription, then time /triage; prints the
    figures in French."""
    from bot.app import DEMO_SCHOOL
    from bot.core.assistant import Assistant
    from bot.core.messages import Incoming
    from bot.core.ticket_records import NewTicket, Reason
    from bot.storage.schoolfile import import_school
    from bot.storage.store import Store

    store = Store.in_memory()
    store.upgrade()
    import_school(store, DEMO_SCHOOL)
    assistant = Assistant.create(settings, store)
    questions = _questions(assistant, tickets)
    now = datetime.now(UTC)
    with store.transaction():
        for number, question in enumerate(questions):
            store.tickets.open(
                NewTicket(
                    Reason.OUT_OF_SCOPE, question, (), f"bench:{number}", None, "Lille 1", now
                )
            )
    incoming = Incoming("console:erun.lille1", text="/triage")
    timings, groups = [], ""
    for _ in range(ROUNDS):
        started = time.perf_counter()
        outcome = assistant.handle(incoming, login="erun.lille1")
        timings.append(time.perf_counter() - started)
        groups = outcome.replies[0].text.split("\n", 1)[0]
    store.dispose()
    print(f"/triage sur {tickets} questions ouvertes, {ROUNDS} fois : {_strip(groups)}")
    print(
        f"médiane {statistics.median(timings) * 1000:.0f} ms, "
        f"pire {max(timings) * 1000:.0f} ms, premier {timings[0] * 1000:.0f} ms"
    )
    return 0


def _questions(assistant: object, count: int) -> list[str]:
    """Varied questions: the base's phrasings and out-of-scope examples, each with a few words
    changed or dropped, as people write them (seeded: the same set every run)."""
    from intents.kb import KnowledgeBase

    kb: KnowledgeBase = assistant.kb  # type: ignore[attr-defined]
    pool = [e for entry in kb.entries.values() for e in entry.examples]
    pool += list(kb.out_of_scope_examples)
    fillers = ["svp", "merci", "bonjour", "urgent", "help", "stp", "la", "mon", "pour"]
    chosen = random.Random(11)
    found = []
    for _ in range(count):
        words = chosen.choice(pool).split()
        if len(words) > 3:
            del words[chosen.randrange(len(words))]
        words.insert(chosen.randrange(len(words) + 1), chosen.choice(fillers))
        found.append(" ".join(words))
    return found


def _strip(html: str) -> str:
    from intents.kb import html_to_text

    return html_to_text(html)
