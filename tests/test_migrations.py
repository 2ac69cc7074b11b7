"""Alembic migrations: the migrated schema is the models', timestamps keep their time zone,
older databases are adopted, and an outdated schema is named before anything runs."""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatch

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import DateTime, MetaData, inspect, text
from sqlmodel import SQLModel

from bot.app import DEMO_SCHOOL
from bot.storage import schema
from bot.storage.accounts import LinkError
from bot.storage.schema import SchemaError
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from bot.storage.tables import ALL_TABLES
from tests.support import ROOT

EIGHT_UTC = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def empty(database_url: str) -> Iterator[Store]:
    """A database with no table at all."""
    opened = Store.from_url(database_url)
    yield opened
    opened.dispose()


def _paris(database_url: str) -> str:
    """The same database, through sessions whose TimeZone is Europe/Paris."""
    assert "options=" in database_url
    return database_url + "%20-ctimezone%3DEurope/Paris"


def _differences(store: Store) -> list[object]:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def _legacy(skip: Collection[str] = ()) -> MetaData:
    """The schema as create_all made it before migrations: sqlmodel's naive timestamps."""
    legacy = MetaData()
    for table in ALL_TABLES:
        if table.name not in skip:
            for column in table.to_metadata(legacy).columns:
                if isinstance(column.type, DateTime):
                    column.type = DateTime()
    return legacy


# --- the migrations build the models' schema ----------------------------------------------


def test_the_migrated_schema_equals_the_models(empty: Store) -> None:
    done = empty.migrate()
    assert done.before is None and done.after == schema.head()
    assert done.applied == ["0001", "0002", "0003", "0004", "0005", "0006", "0007"]
    assert set(done.created) == {table.name for table in ALL_TABLES}
    assert _differences(empty) == []
    empty.check_schema()  # no SchemaError: this is what the code expects
    again = empty.migrate()
    assert again.applied == [] and again.created == []
    assert again.lines() == [f"Base de données déjà à jour (révision {schema.head()})."]


def test_the_comparison_does_see_a_difference(empty: Store) -> None:
    # The check above can fail: a column the models do not know is reported.
    empty.migrate()
    with empty.engine.begin() as connection:
        connection.execute(text("ALTER TABLE users ADD COLUMN nickname VARCHAR"))
    assert [d[0] for d in _differences(empty) if isinstance(d, tuple)] == ["remove_column"]


def test_every_timestamp_is_declared_with_its_time_zone() -> None:
    stamps = {
        f"{table.name}.{column.name}": column.type
        for table in ALL_TABLES
        for column in table.columns
        if isinstance(column.type, DateTime)
    }
    assert len(stamps) == 22
    assert [name for name, kind in stamps.items() if not kind.timezone] == []


def test_postgres_columns_are_timestamptz(empty: Store) -> None:
    if empty.engine.dialect.name != "postgresql":
        pytest.skip("SQLite n'a pas de type horodaté")
    empty.migrate()
    with empty.engine.connect() as connection:
        kinds = set(
            connection.scalars(
                text(
                    "SELECT DISTINCT data_type FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND data_type LIKE 'timestamp%'"
                )
            )
        )
    assert kinds == {"timestamp with time zone"}


# --- the time shift of a session in Europe/Paris ------------------------------------------


def test_a_paris_session_reads_utc_times_back_unchanged(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("le décalage ne concerne que PostgreSQL (SQLite ne garde aucun fuseau)")
    setup = Store.from_url(database_url)
    setup.migrate()
    import_school(setup, DEMO_SCHOOL)
    setup.dispose()
    store = Store.from_url(_paris(database_url))
    try:
        with store.engine.connect() as connection:
            assert connection.scalar(text("SHOW TimeZone")) == "Europe/Paris"
        store.audit.record("claire.martin", "action.block", [], "done", "", None, at=EIGHT_UTC)
        assert [entry.at for entry in store.audit.entries()] == [EIGHT_UTC]
        # The link code written at 08:00 UTC expires at 08:00 UTC two days later, not 10:00.
        late = store.accounts.invite("claire.martin", EIGHT_UTC)
        with pytest.raises(LinkError, match="expiré"):
            store.accounts.redeem("tg:1", late, EIGHT_UTC + timedelta(hours=48, minutes=30))
        code = store.accounts.invite("claire.martin", EIGHT_UTC)
        assert store.accounts.redeem("tg:2", code, EIGHT_UTC) == "claire.martin"
        assert [link.linked_at for link in store.accounts.list_links()] == [EIGHT_UTC]
    finally:
        store.dispose()


# --- databases older than the migrations ---------------------------------------------------


def test_an_older_database_is_adopted_with_its_rows_and_its_times(empty: Store) -> None:
    # Tables that later migrations create: a database older than the migrations has none.
    new_tables = {
        "individual_blocks",
        "removed_groups",
        "scheduled_jobs",
        "weekly_reminders",
        "tickets",
        "learned_phrasings",
        "knowledge_drafts",
        "question_log",
        "ent_oauth_states",
        "ent_tokens",
    }
    _legacy(skip=new_tables).create_all(empty.engine)
    empty.audit.record("claire.martin", "action.block", [], "done", "", None, at=EIGHT_UTC)
    with pytest.raises(SchemaError, match="avant les migrations.*python -m bot db upgrade"):
        empty.check_schema()
    done = empty.migrate()
    assert done.before is None
    assert done.applied == ["0001", "0002", "0003", "0004", "0005", "0006", "0007"]
    assert set(done.created) == new_tables
    assert _differences(empty) == []
    # Written by a session in UTC (the server's usual TimeZone), read back the same.
    assert [entry.at for entry in empty.audit.entries()] == [EIGHT_UTC]
    import_school(empty, DEMO_SCHOOL)
    assert empty.directory.user("usr-p12").blocked_individually  # type: ignore[union-attr]


# --- the start-up check --------------------------------------------------------------------


def test_an_empty_database_is_refused_with_the_upgrade_command(empty: Store) -> None:
    with pytest.raises(SchemaError) as refused:
        empty.check_schema()
    message = str(refused.value)
    assert "vide" in message and "python -m bot db upgrade" in message and "\n" not in message
    assert inspect(empty.engine).get_table_names() == []  # checking created nothing


def test_an_outdated_or_unknown_revision_is_refused(empty: Store) -> None:
    empty.migrate()
    with empty.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    with pytest.raises(SchemaError, match=r"pas à jour \(révision 0001.*python -m bot db upgrade"):
        empty.check_schema()
    assert empty.migrate().applied == ["0002", "0003", "0004", "0005", "0006", "0007"]
    empty.check_schema()
    with empty.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    with pytest.raises(SchemaError, match="révision inconnue.*0999"):
        empty.check_schema()


# --- shipped with the package --------------------------------------------------------------


def test_the_migrations_ship_with_the_package() -> None:
    folder = ROOT / "bot" / "storage" / "migrations"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["package-data"]["bot"]
    for path in folder.rglob("*"):
        if "__pycache__" in path.parts or path.is_dir():
            continue
        relative = path.relative_to(ROOT / "bot").as_posix()
        if path.suffix == ".py":
            # setuptools finds Python files only in packages.
            assert (path.parent / "__init__.py").is_file(), relative
        else:
            assert any(fnmatch(relative, pattern) for pattern in patterns), relative
    assert sorted(p.name for p in (folder / "versions").glob("v*.py")) == [
        "v0001_initial_schema.py",
        "v0002_timestamps_with_time_zone.py",
        "v0003_conversation_state_version.py",
        "v0004_scheduled_jobs.py",
        "v0005_drop_birth_dates_and_child_links.py",
        "v0006_erun_tickets.py",
        "v0007_ent_tokens.py",
    ]


def test_paris_time_does_not_need_the_system_zone_files() -> None:
    # tzdata is a dependency: ZoneInfo falls back on it where /usr/share/zoneinfo is missing.
    from importlib.metadata import requires
    from importlib.resources import files
    from zoneinfo import ZoneInfo

    assert any(r.startswith("tzdata") for r in requires("assistant-rentree-ent") or [])
    assert (files("tzdata") / "zoneinfo" / "Europe" / "Paris").is_file()
    assert EIGHT_UTC.astimezone(ZoneInfo("Europe/Paris")).hour == 10
