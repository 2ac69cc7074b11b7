"""Retention: the purge deletes exactly what is older than the settings allow, on SQLite and
PostgreSQL; `python -m bot purge` prints the counts; the school-file import keeps no birth
date and no parent–child link, and revision 0005 removes those already stored."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from bot.app import DEMO_SCHOOL
from bot.cli.errors import guarded
from bot.cli.storage import add_commands
from bot.settings import Settings, SettingsError, load_settings
from bot.storage import schema
from bot.storage.accounts import LinkError
from bot.storage.retention import Purged, purge
from bot.storage.schoolfile import export_school, import_school
from bot.storage.store import Store
from tests.support import migrated_store

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """The demo school in a fresh SQLite file or PostgreSQL schema."""
    with migrated_store(database_url, demo=True) as opened:
        yield opened


def _fail_a_code(store: Store, speaker: str, at: datetime) -> None:
    with pytest.raises(LinkError):
        store.accounts.redeem(speaker, "ZZZZZZZZ", at)


# --- the purge ---------------------------------------------------------------------------


def test_the_purge_deletes_what_is_older_than_the_settings_and_nothing_else(
    store: Store,
) -> None:
    cut, audit_cut = NOW - 90 * DAY, NOW - 365 * DAY
    # Conversation states: idle just over, exactly at, just under 90 days.
    store.conversations.put("telegram:old", {"menu": "public"}, now=cut - SECOND)
    store.conversations.put("telegram:edge", {"menu": "public"}, now=cut)
    store.conversations.put("telegram:recent", {"menu": "public"}, now=cut + SECOND)
    _fail_a_code(store, "telegram:old", cut - SECOND)
    _fail_a_code(store, "telegram:recent", cut + SECOND)
    # Link codes: one used long ago, one expired long ago, one expired recently, one live.
    used = store.accounts.invite("claire.martin", cut - 10 * DAY)
    store.accounts.redeem("telegram:linked", used, cut - 10 * DAY)
    store.accounts.invite("claire.martin", cut - 3 * DAY)  # expired at cut - 1 day
    recent = store.accounts.invite("claire.martin", cut - DAY)  # expires at cut + 1 day
    live = store.accounts.invite("claire.martin", NOW)
    for at in (audit_cut - SECOND, audit_cut, audit_cut + SECOND, cut - SECOND):
        store.audit.record("telegram:linked", "action.block", [], "done", "", None, at=at)

    done = purge(store, 90, 365, now=NOW)

    assert done == Purged(
        conversation_states=1, failed_link_attempts=1, link_codes=2, audit_entries=1
    )
    assert store.conversations.get("telegram:old") == {}
    assert store.conversations.get("telegram:edge") == {"menu": "public"}
    assert store.conversations.get("telegram:recent") == {"menu": "public"}
    assert [e.at for e in store.audit.entries()] == [audit_cut, audit_cut + SECOND, cut - SECOND]
    # The link made with the used code stays: links live as long as the account is linked.
    assert store.accounts.login_for("telegram:linked") == "claire.martin"
    # The codes still valid, or expired less than 90 days ago, still answer as before.
    assert store.accounts.redeem("telegram:new", live, NOW) == "claire.martin"
    with pytest.raises(LinkError, match="expiré"):
        store.accounts.redeem("telegram:late", recent, NOW)
    # Run again: nothing left to delete.
    assert purge(store, 90, 365, now=NOW) == Purged(0, 0, 0, 0)


def test_the_failed_attempts_purged_no_longer_count_against_the_speaker(store: Store) -> None:
    for minute in range(5):
        _fail_a_code(store, "telegram:7", NOW - 91 * DAY + minute * SECOND)
    assert purge(store, 90, 365, now=NOW).failed_link_attempts == 5
    assert purge(store, 90, 365, now=NOW).failed_link_attempts == 0


def test_the_purge_deletes_the_jobs_over_for_longer_than_the_retention(store: Store) -> None:
    jobs = store.jobs
    for name, at in (("old", NOW - 91 * DAY), ("recent", NOW - 89 * DAY)):
        jobs.schedule("weekly", {}, f"cancelled:{name}", "telegram:1", at, at)
        assert jobs.cancel(f"cancelled:{name}", at)
    jobs.schedule("weekly", {}, "pending:old", "telegram:1", NOW - 91 * DAY, NOW - 91 * DAY)
    assert purge(store, 90, 365, now=NOW).finished_jobs == 1
    assert sorted(job.status for job in jobs.jobs(owner="telegram:1")) == [
        "cancelled",
        "pending",
    ]


def test_the_purge_follows_the_settings(store: Store) -> None:
    store.conversations.put("telegram:1", {}, now=NOW - 8 * DAY)
    store.audit.record("telegram:1", "action.block", [], "done", at=NOW - 31 * DAY)
    assert purge(store, 90, 365, now=NOW) == Purged(0, 0, 0, 0)
    assert purge(store, 7, 30, now=NOW) == Purged(1, 0, 0, 1)


def test_retention_settings_are_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (Settings().retention_days, Settings().audit_retention_days) == (90, 365)
    monkeypatch.setenv("RETENTION_DAYS", "30")
    monkeypatch.setenv("AUDIT_RETENTION_DAYS", "400")
    assert (load_settings().retention_days, load_settings().audit_retention_days) == (30, 400)
    monkeypatch.setenv("RETENTION_DAYS", "0")
    with pytest.raises(SettingsError, match="RETENTION_DAYS"):
        load_settings()


def _cli(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="bot")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return guarded(lambda: args.func(args, settings))


def test_the_purge_command_prints_the_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'purge.db'}"
    opened = Store.from_url(url)
    try:
        opened.upgrade()
        long_ago = datetime.now(UTC) - 100 * DAY
        opened.conversations.put("telegram:1", {}, now=long_ago)
        opened.conversations.put("telegram:2", {}, now=long_ago)
        opened.audit.record("telegram:1", "action.block", [], "done", at=long_ago)
    finally:
        opened.dispose()
    assert _cli(load_settings(database_url=url), "purge") == 0
    assert capsys.readouterr().out.strip() == (
        "Purge : 2 état(s) de conversation, 0 code(s) erroné(s), 0 code(s) de connexion, "
        "0 entrée(s) du journal d'audit, 0 tâche(s) planifiée(s) terminée(s), 0 question(s) "
        "transmise(s) à l'eRun, 0 question(s) du journal des statistiques, 0 formulation(s) "
        "apprise(s) déjà exportée(s) supprimé(s)."
    )
    assert _cli(load_settings(database_url=url, audit_retention_days=30), "purge") == 0
    assert "1 entrée(s) du journal d'audit" in capsys.readouterr().out


# --- what the school-file import keeps -----------------------------------------------------


def _with_birth_dates_and_children() -> dict:
    data = json.loads(DEMO_SCHOOL.read_text(encoding="utf-8"))
    pupils = [u for u in data["users"] if u["profile"] == "Student"]
    for n, pupil in enumerate(pupils):
        pupil["birth_date"] = f"2019-0{n % 9 + 1}-12"
    parent = next(u for u in data["users"] if u["login"] == "parent.demo")
    parent["children"] = [pupils[0]["id"], pupils[1]["id"]]
    return data


def test_the_import_keeps_no_birth_date_and_no_child_link(store: Store) -> None:
    data = _with_birth_dates_and_children()
    import_school(store, data)
    with store.engine.connect() as connection:
        tables = inspect(connection).get_table_names()
        columns = [c["name"] for c in inspect(connection).get_columns("users")]
        dump = " ".join(
            str(row) for row in connection.execute(text("SELECT * FROM users")).fetchall()
        )
    assert "relative_children" not in tables
    assert "birth_date" not in columns
    assert "2019-01-12" not in dump
    exported = export_school(store)
    assert all("birth_date" not in u and "children" not in u for u in exported["users"])
    # The parent is still a parent: the role comes from the profile, not from the children.
    parent = store.directory.user_by_login("parent.demo")
    assert parent is not None and parent.profile == "Relative"


def test_revision_0005_removes_the_birth_dates_and_child_links_already_stored(
    database_url: str,
) -> None:
    opened = Store.from_url(database_url)
    try:
        with opened.engine.begin() as connection:
            config = schema._config()
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
        with opened.engine.begin() as connection:
            assert "birth_date" in [c["name"] for c in inspect(connection).get_columns("users")]
            insert = (
                "INSERT INTO users (id, login, first_name, last_name, profile, source, "
                "activated, blocked, functions, birth_date, position) VALUES "
                "(:id, :login, 'A', 'B', :profile, 'AAF1D', true, false, '[]', :born, 0)"
            )
            connection.execute(
                text(insert),
                [
                    {"id": "u1", "login": "a.b", "profile": "Relative", "born": None},
                    {"id": "u2", "login": "c.d", "profile": "Student", "born": "2019-04-12"},
                ],
            )
            connection.execute(
                text(
                    "INSERT INTO relative_children (parent_id, child_id, position) "
                    "VALUES ('u1', 'u2', 0)"
                )
            )
        done = opened.migrate()
        assert done.applied[0] == "0005"
        with opened.engine.connect() as connection:
            assert "relative_children" not in inspect(connection).get_table_names()
            assert "birth_date" not in [
                c["name"] for c in inspect(connection).get_columns("users")
            ]
            assert connection.execute(
                text("SELECT id FROM users ORDER BY id")
            ).scalars().all() == [
                "u1",
                "u2",
            ]
        opened.check_schema()
    finally:
        opened.dispose()
