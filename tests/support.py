"""Helpers shared by the tests: the demo school's accounts, a clock, a conversation that
sees what a user sees."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from bot.app import DEMO_SCHOOL
from bot.core.assistant import Assistant
from bot.core.messages import Incoming, Outcome
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from intents.kb import KnowledgeBase, html_to_text
from intents.nlu.matcher import Matcher

# The shared/ checkout sits beside this tree (/work/main, /work/shared; in CI, the clone's
# sibling): the evaluation sets and the development school come from there.
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DEV_SET = SHARED / "eval" / "dev.jsonl"
DEV_SCHOOL = SHARED / "eval" / "dev-school.json"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEMO = "0590123A"
PASTEUR = "0590124B"
DIRECTOR = "claire.martin"
OTHER_DIRECTOR = "marc.dubois"
ERUN = "erun.lille1"
PARENT = "parent.demo"


@cache
def shared_kb_and_matcher() -> tuple[KnowledgeBase, Matcher]:
    """Loaded once for the whole run: both are read-only."""
    kb = KnowledgeBase()
    cache = os.environ.get("MODEL_CACHE_DIR")  # set for the run by conftest.model_cache
    return kb, Matcher(kb, cache_dir=Path(cache) if cache else None)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Seen:
    """What a user sees of one answer: plain texts and button labels."""

    outcome: Outcome
    texts: list[str] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)
    # Labels of buttons taken off earlier messages with this answer (Outcome.void_buttons).
    removed: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    @property
    def intent(self) -> str | None:
        return self.outcome.intent


class Conversation:
    """One speaker talking to the real core; buttons pressed by label like a person."""

    def __init__(
        self, assistant: Assistant, login: str | None, key: str | None = None, private: bool = True
    ) -> None:
        self.assistant = assistant
        self.login = login
        self.key = key or f"test:{login or 'public'}"
        self.private = private
        self.last: Outcome | None = None
        # Every answer so far: a person can scroll up and press an older button.
        self.history: list[Outcome] = []
        # Like a channel: each reply is a message with a reference; the buttons a message
        # carries, and the ids of those the core had taken away.
        self.shown: dict[str, list[str]] = {}
        self.taken_away: set[str] = set()
        self.messages_sent = 0

    def _send(self, **kwargs: object) -> Seen:
        incoming = Incoming(self.key, private_chat=self.private, **kwargs)  # type: ignore[arg-type]
        outcome = self.assistant.handle(incoming, login=self.login)
        self.last = outcome
        self.history.append(outcome)
        removed = []
        for ref in outcome.void_buttons:
            for button_id in self.shown.pop(ref, []):
                self.taken_away.add(button_id)
                removed.append(self._label(button_id))
        for reply in outcome.replies:
            self.messages_sent += 1
            ref = f"{self.key}#{self.messages_sent}"
            self.shown[ref] = [b.id for b in reply.buttons]
            if reply.key is not None:
                self.assistant.delivered(self.key, reply.key, ref)
        return Seen(
            outcome,
            [html_to_text(r.text) for r in outcome.replies],
            [b.label for r in outcome.replies for b in r.buttons],
            removed,
        )

    def _label(self, button_id: str) -> str:
        for outcome in self.history:
            for reply in outcome.replies:
                for button in reply.buttons:
                    if button.id == button_id:
                        return button.label
        return button_id

    def say(self, text: str) -> Seen:
        return self._send(text=text)

    def button_id(self, label: str, *, earlier: bool = False) -> str:
        """The button of the last answer with that label; with `earlier`, of the most recent
        answer that had one."""
        assert self.last is not None
        for outcome in reversed(self.history if earlier else [self.last]):
            for reply in outcome.replies:
                for button in reply.buttons:
                    if button.label == label:
                        # A person cannot press a button the channel took off the screen.
                        assert button.id not in self.taken_away, f"{label!r} was taken away"
                        return button.id
        raise AssertionError(
            f"no button {label!r} in {[b.label for r in self.last.replies for b in r.buttons]}"
        )

    def press(self, label: str, *, earlier: bool = False) -> Seen:
        return self._send(press=self.button_id(label, earlier=earlier))

    def press_id(self, button_id: str) -> Seen:
        return self._send(press=button_id)


@cache
def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used for these tests, or None when it can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg n'est pas installé"
    try:
        with psycopg.connect(PG_URL.replace("+psycopg", ""), connect_timeout=2):
            return None
    except psycopg.Error as error:
        return f"PostgreSQL injoignable à {PG_URL} : {str(error).strip().splitlines()[0]}"


def in_ci() -> bool:
    """CI sets CI=true (GitHub Actions, GitLab and most others do)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def need_shared(path: Path) -> Path:
    """`path` (a file of ../shared), or the test stops: skipped, saying why, on a machine
    without shared/, but failed under CI, where shared/ is always cloned beside the tree and
    its absence means the measurement silently stopped."""
    if path.is_file():
        return path
    why = f"{path} absent : ce test a besoin de shared/ à côté de {ROOT}"
    if in_ci():
        pytest.fail(f"{why} (CI=true : shared/ doit être présent)", pytrace=False)
    pytest.skip(why)


def need_postgres() -> None:
    """PostgreSQL, or the test stops: skipped, saying why, on a machine without it, but
    failed under CI, where the database service is always there and its absence means the
    concurrency tests silently stopped measuring."""
    why = postgres_unreachable()
    if why is None:
        return
    if in_ci():
        pytest.fail(f"{why} (CI=true : PostgreSQL doit être joignable)", pytrace=False)
    pytest.skip(why)


@contextmanager
def migrated_store(database_url: str, *, demo: bool = False) -> Iterator[Store]:
    """A store on that database, migrated (with the demo school if `demo`), closed after."""
    opened = Store.from_url(database_url)
    try:
        opened.upgrade()
        if demo:
            import_school(opened, DEMO_SCHOOL)
        yield opened
    finally:
        opened.dispose()
