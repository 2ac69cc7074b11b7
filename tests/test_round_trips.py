"""Database round trips per message: reads outside the transaction, BEGIN only before a write,
the last write alone, an unchanged state not written, a dead connection survived."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from bot.app import DEMO_SCHOOL
from bot.core.assistant import Assistant
from bot.core.messages import APOLOGY
from bot.settings import Settings
from bot.storage.schoolfile import import_school
from bot.storage.store import Store, WriteAfterClosing, driver_in_transaction
from tests.support import Conversation, migrated_store, shared_kb_and_matcher

DIRECTOR = "claire.martin"


class Trips:
    """The statements a store sends, and COMMIT/ROLLBACK when a transaction was begun."""

    def __init__(self, store: Store) -> None:
        self.sent: list[str] = []
        event.listen(store.engine, "before_cursor_execute", self._statement)
        for name in ("commit", "rollback"):
            event.listen(store.engine, name, self._end)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.sent.append(" ".join(statement.split()[:3]).upper())

    def _end(self, conn: Any) -> None:
        if driver_in_transaction(conn.connection.dbapi_connection):
            self.sent.append("COMMIT/ROLLBACK")

    def during(self, action: Any) -> list[str]:
        """The round trips of one action."""
        self.sent = []
        action()
        return self.sent


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with migrated_store(database_url, demo=True) as opened:
        yield opened


@pytest.fixture
def assistant(store: Store) -> Assistant:
    kb, matcher = shared_kb_and_matcher()
    return Assistant(Settings(), store, kb, matcher)


def test_a_parent_question_is_one_read_and_one_write(store: Store, assistant: Assistant) -> None:
    # Its periodic housekeeping (taught phrasings, question counts) done: not per message.
    assistant.housekeeping(force=True)
    trips = Trips(store)
    parent = Conversation(assistant, None, key="telegram:4242")
    for question in ("comment activer mon compte educonnect", "j'ai oublié mon mot de passe"):
        sent = trips.during(lambda q=question: parent.say(q))
        assert "EduConnect" in parent.last.replies[0].text  # type: ignore[union-attr]
        # The link and the state in one SELECT; the state written alone: no BEGIN, no COMMIT.
        assert len(sent) == 2, sent
        assert sent[0].startswith("SELECT") and sent[1].split()[0] in ("INSERT", "UPDATE")


def test_a_message_that_changes_nothing_writes_nothing(store: Store, assistant: Assistant) -> None:
    director = Conversation(assistant, DIRECTOR, key="telegram:777")
    director.say("bloque les parents")
    confirm = director.button_id("Confirmer")
    assert "C'est fait" in director.press_id(confirm).text
    trips = Trips(store)
    version = store.conversations.load("telegram:777")[1]
    sent = trips.during(lambda: director.press_id(confirm))
    assert "plus en attente" in director.last.replies[0].text  # type: ignore[union-attr]
    assert [s.split()[0] for s in sent] == ["SELECT"], sent
    assert store.conversations.load("telegram:777")[1] == version


def test_a_confirmation_writes_only_inside_one_transaction(
    store: Store, assistant: Assistant
) -> None:
    director = Conversation(assistant, DIRECTOR, key="telegram:778")
    director.say("bloque les parents")
    trips = Trips(store)
    sent = trips.during(lambda: director.press("Confirmer"))
    assert "C'est fait" in director.last.replies[0].text  # type: ignore[union-attr]
    first_write = next(i for i, s in enumerate(sent) if not s.startswith("SELECT"))
    # The claim, the change, its audit entry and the state: after one BEGIN, one COMMIT.
    assert sent[first_write] == "BEGIN"
    assert sent[-1] == "COMMIT/ROLLBACK" and sent.count("BEGIN") == 1
    assert any(s.startswith("INSERT INTO AUDIT_ENTRIES") for s in sent[first_write:])


def test_a_write_after_the_last_one_is_refused(store: Store) -> None:
    with pytest.raises(WriteAfterClosing), store.transaction():
        with store.last_write() as alone:
            assert alone
            store.conversations.save("telegram:1", {"menu": "public"}, 0)
        store.accounts.unlink("telegram:1")


def test_the_last_write_joins_a_transaction_already_begun(store: Store) -> None:
    with pytest.raises(RuntimeError, match="undone"), store.transaction():
        store.conversations.save("telegram:2", {"menu": "public"}, 0)
        with store.last_write() as alone:
            assert not alone
            store.conversations.save("telegram:2", {"menu": "director"}, 1)
        raise RuntimeError("undone")
    assert store.conversations.load("telegram:2") == ({}, 0)


def test_a_killed_connection_still_gets_an_answer(postgres_url: str) -> None:
    import psycopg

    store = Store.from_url(postgres_url)
    try:
        store.upgrade()
        import_school(store, DEMO_SCHOOL)
        kb, matcher = shared_kb_and_matcher()
        parent = Conversation(Assistant(Settings(), store, kb, matcher), None, key="telegram:9")
        assert "EduConnect" in parent.say("comment activer mon compte educonnect").text
        with store.engine.connect() as connection:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        plain = postgres_url.split("?")[0].replace("+psycopg", "")
        with psycopg.connect(plain, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        # The pooled connection is dead: found so, renewed, and the message handled again.
        seen = parent.say("j'ai oublié mon mot de passe")
        assert APOLOGY not in seen.text
        assert "EduConnect" in seen.text
    finally:
        store.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    from tests.conftest import postgres_schema

    with postgres_schema() as url:
        yield url
