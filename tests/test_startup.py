"""Opening the store at start: the embedded default looks after itself (migrated, demo school
when empty); an operator's database (DATABASE_URL) must be migrated by the release step and
is never filled with the demo school unless asked (--demo)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from bot.app import is_embedded, open_store, start
from bot.cli.main import main
from bot.settings import Settings
from bot.storage.schema import SchemaError
from bot.storage.store import Store
from tests.support import DIRECTOR
from tests.test_cli import jsonl, run_bot


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without .env nor DATABASE_URL: the README's fresh machine."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path


def _has_director(store: Store) -> bool:
    return store.directory.user_by_login(DIRECTOR) is not None


def test_the_embedded_default_migrates_itself_and_gets_the_demo_once(home: Path) -> None:
    settings = Settings()
    assert not settings.database_url_given and is_embedded(settings)
    store = open_store(settings)
    try:
        assert (home / "assistant-rentree.db").is_file()
        store.check_schema()
        assert _has_director(store)
        store.directory.delete_group("grp-gar")
    finally:
        store.dispose()
    store = open_store(settings)
    try:
        # A second start keeps the changed directory rather than reseeding it.
        assert store.directory.group("grp-gar") is None
    finally:
        store.dispose()


def test_commands_that_only_read_never_seed_the_embedded_default(home: Path) -> None:
    store = open_store(Settings(), seed_demo=False)
    try:
        store.check_schema()  # migrated all the same
        assert store.is_empty()
    finally:
        store.dispose()


def test_database_url_in_the_environment_or_dotenv_counts_as_given(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / ".env").write_text("DATABASE_URL=sqlite:///from-dotenv.db\n", encoding="utf-8")
    from_file = Settings()
    assert from_file.database_url_given and not is_embedded(from_file)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///assistant-rentree.db")
    # Even the default's own value, written out: the operator chose it.
    assert not is_embedded(Settings())


def test_an_operator_database_is_never_migrated_at_start(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    with pytest.raises(SchemaError, match="python -m bot db upgrade"):
        open_store(settings)
    with pytest.raises(SchemaError, match="python -m bot db upgrade"):
        start(settings)  # what run and webhook call
    probe = Store.from_url(database_url)
    try:
        assert inspect(probe.engine).get_table_names() == []
    finally:
        probe.dispose()


def test_an_empty_operator_database_gets_the_demo_only_with_demo(database_url: str) -> None:
    migrated = Store.from_url(database_url)
    migrated.migrate()
    migrated.dispose()
    settings = Settings(database_url=database_url)
    store = open_store(settings)
    try:
        assert store.is_empty() and not _has_director(store)
    finally:
        store.dispose()
    store = open_store(settings, demo=True)
    try:
        assert _has_director(store)
    finally:
        store.dispose()


def test_a_throw_away_database_in_memory_is_ready_with_the_demo() -> None:
    # Tests and `bench telegram` start on sqlite:// given explicitly: it dies with the process.
    settings = Settings(database_url="sqlite://")
    assert settings.database_url_given and is_embedded(settings)
    store = open_store(settings)
    try:
        store.check_schema()
        assert _has_director(store)
    finally:
        store.dispose()


# --- the commands on an operator's database (DATABASE_URL) -------------------------------


def test_an_operator_database_is_migrated_by_the_release_step_and_never_gets_the_demo(
    tmp_path: Path,
) -> None:
    db = tmp_path / "production.db"
    refused = run_bot("chat", "--jsonl", stdin=jsonl({"text": "bonjour"}), db=db)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "python -m bot db upgrade" in refused.stderr
    upgraded = run_bot("db", "upgrade", db=db)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.startswith("Base de données migrée à la révision ")
    assert "table(s) créée(s)" in upgraded.stdout
    assert run_bot("db", "upgrade", db=db).stdout.startswith("Base de données déjà à jour")
    invite = run_bot("accounts", "invite", "claire.martin", db=db)
    assert invite.returncode == 1 and invite.stderr.count("\n") == 1
    assert "L'annuaire est vide" in invite.stderr and "directory import" in invite.stderr
    stranger = run_bot("chat", "--jsonl", "--as", "claire.martin", db=db)
    assert stranger.returncode == 1 and "Compte inconnu" in stranger.stderr
    # Asked for explicitly, the demo school is loaded.
    demo = run_bot(
        "chat",
        "--jsonl",
        "--demo",
        "--as",
        "claire.martin",
        stdin=jsonl({"text": "bonjour"}),
        db=db,
    )
    assert demo.returncode == 0, demo.stderr
    assert json.loads(demo.stdout.splitlines()[0])["intent"] == "dialogue.greet"
    assert run_bot("accounts", "invite", "claire.martin", db=db).returncode == 0


def test_accounts_invite_on_an_empty_operator_database(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["accounts", "invite", "claire.martin"]) == 1
    assert "python -m bot db upgrade" in capsys.readouterr().err
    assert main(["db", "upgrade"]) == 0
    assert "(appliquées : 0001, 0002, 0003, 0004, 0005, 0006, 0007)" in capsys.readouterr().out
    assert main(["accounts", "invite", "claire.martin"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("L'annuaire est vide")
    assert "claire.martin" in err
    assert main(["accounts", "list"]) == 0  # reading an empty directory is fine
    assert capsys.readouterr().out == "Aucun compte Telegram lié.\n"
    assert main(["accounts", "invite", "claire.martin", "--demo"]) == 0
    assert len(capsys.readouterr().out.split()[0]) == 8


@pytest.mark.parametrize("drops", [1, 3])
def test_a_connection_dropped_while_starting_is_tried_again_not_fatal(
    drops: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook restarted while the database fails over: the pooled connection the schema
    check gets was terminated by the server; the start tries again, a few times, then says so."""
    import psycopg

    from bot import app as startup
    from tests.conftest import postgres_schema

    monkeypatch.setattr(startup, "START_PAUSES", (0.0, 0.0))
    check = Store.check_schema
    left = [drops]

    def check_on_a_dead_connection(store: Store) -> None:
        if left[0]:
            left[0] -= 1
            with store.engine.connect() as connection:  # pooled again when closed
                pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            plain = str(store.engine.url.set(drivername="postgresql", query={}))
            with psycopg.connect(plain, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        check(store)

    monkeypatch.setattr(Store, "check_schema", check_on_a_dead_connection)
    with postgres_schema() as url:
        migrated = Store.from_url(url)
        migrated.migrate()
        migrated.dispose()
        settings = Settings(database_url=url)
        if drops > len(startup.START_PAUSES):
            with pytest.raises(OperationalError) as raised:
                open_store(settings, demo=True)
            assert raised.value.connection_invalidated
            return
        store = open_store(settings, demo=True)
        try:
            assert _has_director(store) and not left[0]
        finally:
            store.dispose()
