"""Fixtures: the in-process pipeline (`say("…") -> replies`) on the embedded demo school, and
fresh databases (SQLite, PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.app import DEMO_SCHOOL
from bot.core.assistant import Assistant
from bot.settings import Settings
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from tests.support import (
    PG_URL,
    Clock,
    Conversation,
    need_postgres,
    shared_kb_and_matcher,
)


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One intent model for the whole run, trained once here: the command-line tests start
    `python -m bot` many times, and each would otherwise train it again."""
    folder = tmp_path_factory.mktemp("model-cache")
    # A model trained again for each phrasing a test teaches would cost 15 s of CPU each:
    # tests/test_retraining.py turns it on where it is what is tested.
    retrain = os.environ.get("RETRAIN_TAUGHT")
    os.environ["RETRAIN_TAUGHT"] = "false"
    before = os.environ.get("MODEL_CACHE_DIR")
    os.environ["MODEL_CACHE_DIR"] = str(folder)
    shared_kb_and_matcher()
    yield folder
    if retrain is None:
        os.environ.pop("RETRAIN_TAUGHT", None)
    else:
        os.environ["RETRAIN_TAUGHT"] = retrain
    if before is None:
        os.environ.pop("MODEL_CACHE_DIR", None)
    else:
        os.environ["MODEL_CACHE_DIR"] = before


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> Iterator[Store]:
    store = Store.in_memory()
    store.upgrade()
    import_school(store, DEMO_SCHOOL)
    yield store
    store.dispose()


@pytest.fixture
def assistant(store: Store, clock: Clock) -> Assistant:
    kb, matcher = shared_kb_and_matcher()
    return Assistant(Settings(), store, kb, matcher, clock=clock)


@pytest.fixture
def talk(assistant: Assistant):  # type: ignore[no-untyped-def]
    """talk(login=None) -> a Conversation as that directory account (None: the public)."""

    def open_conversation(login: str | None = None, **kwargs: object) -> Conversation:
        return Conversation(assistant, login, **kwargs)  # type: ignore[arg-type]

    return open_conversation


@pytest.fixture
def say(talk):  # type: ignore[no-untyped-def]
    """say("…") -> what an anonymous member of the public sees."""
    public = talk(None)
    return public.say


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, isolated database: a SQLite file, or a throw-away PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with postgres_schema() as url:
        yield url


@contextmanager
def postgres_schema() -> Iterator[str]:
    """The URL of a throw-away PostgreSQL schema (skipped without PostgreSQL, except in CI)."""
    need_postgres()
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    plain = PG_URL.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
