"""Accounts blocked one by one: stored apart from profile blocks, lifted by a profile unblock
unless kept (the ENT's rule), read from and written to school files, and named to the
director before an unblock."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlmodel import SQLModel

from bot.app import DEMO_SCHOOL
from bot.core.assistant import Assistant
from bot.settings import Settings
from bot.storage.school_rules import SchoolFileError
from bot.storage.schoolfile import blocked_alone, export_school, import_school
from bot.storage.store import Store
from bot.storage.tables import ALL_TABLES
from tests.support import DEMO, DIRECTOR, Clock, Conversation, shared_kb_and_matcher

ANA = "usr-p12"  # the one demo parent blocked on her own


def _demo() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(DEMO_SCHOOL).read_text(encoding="utf-8"))
    return data


def _user(data: dict[str, Any], user_id: str) -> dict[str, Any]:
    return next(user for user in data["users"] if user["id"] == user_id)


@pytest.fixture
def store() -> Iterator[Store]:
    opened = Store.in_memory()
    opened.upgrade()
    yield opened
    opened.dispose()


# -- storage -----------------------------------------------------------------------------------


def test_a_lone_blocked_account_of_a_school_file_is_an_individual_block(store: Store) -> None:
    import_school(store, DEMO_SCHOOL)
    ana = store.directory.user(ANA)
    assert ana is not None and ana.blocked and ana.blocked_individually
    assert not any(u.blocked_individually for u in store.directory.users(DEMO) if u.id != ANA)


def test_a_profile_block_keeps_individual_marks_and_an_unblock_lifts_them(store: Store) -> None:
    import_school(store, DEMO_SCHOOL)
    directory = store.directory
    directory.set_blocked(DEMO, ["Relative"], True)
    parents = directory.users(DEMO, profiles=["Relative"])
    assert all(u.blocked for u in parents)
    assert [u.id for u in parents if u.blocked_individually] == [ANA]
    result = directory.set_blocked(DEMO, ["Relative"], False)
    assert ANA in result.changed and result.kept == ()
    ana = directory.user(ANA)
    assert ana is not None and not ana.blocked and not ana.blocked_individually


def test_an_unblock_keeps_the_accounts_asked(store: Store) -> None:
    import_school(store, DEMO_SCHOOL)
    directory = store.directory
    directory.set_blocked(DEMO, ["Relative"], True)
    result = directory.set_blocked(DEMO, ["Relative"], False, keep=[ANA])
    assert result.kept == (ANA,) and ANA not in result.changed and len(result.changed) == 14
    ana = directory.user(ANA)
    assert ana is not None and ana.blocked and ana.blocked_individually
    # `keep` means nothing to a block.
    again = directory.set_blocked(DEMO, ["Relative"], True, keep=[ANA])
    assert again.kept == () and ANA in again.unchanged


def test_school_files_say_it_only_where_a_reader_would_guess_wrong(store: Store) -> None:
    data = _demo()
    import_school(store, data)
    assert export_school(store) == data  # Ana's block is guessed right: nothing written
    store.directory.set_blocked(DEMO, ["Relative"], True)
    exported = export_school(store)
    # Every parent blocked: a reader would take Ana's block for the profile's.
    assert _user(exported, ANA)["blocked_individually"] is True
    assert "blocked_individually" not in _user(exported, "usr-p01")
    import_school(store, exported)
    assert export_school(store) == exported
    ana = store.directory.user(ANA)
    assert ana is not None and ana.blocked_individually


def test_the_guess_looks_at_the_profile_in_each_school() -> None:
    users = [
        {"id": "a", "profile": "Relative", "blocked": True, "structures": ["S"]},
        {"id": "b", "profile": "Relative", "blocked": False, "structures": ["S"]},
        {"id": "c", "profile": "Student", "blocked": True, "structures": ["S"]},
        {"id": "d", "profile": "Relative", "blocked": True, "structures": ["T"]},
        {"id": "e", "profile": "Relative", "blocked": False, "structures": ["T"], "deleted": "x"},
    ]
    assert blocked_alone(users) == {"a"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yes", "« blocked_individually » doit être un booléen"),
        (True, "vaut true sur un compte non bloqué"),
    ],
)
def test_a_wrong_individual_block_is_refused_by_name(
    store: Store, value: object, message: str
) -> None:
    data = _demo()
    _user(data, "usr-p01")["blocked_individually"] = value
    with pytest.raises(SchoolFileError) as refused:
        import_school(store, data)
    assert "usr-p01" in str(refused.value) and message in str(refused.value)


def test_upgrade_adds_the_new_tables_to_an_older_database(tmp_path: Path) -> None:
    # A database of an earlier release: made by create_all before migrations existed (no
    # alembic_version) and before these two tables; the first migration adopts it.
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Store.from_url(url)
    new = {"individual_blocks", "removed_groups"}
    SQLModel.metadata.create_all(old.engine, [t for t in ALL_TABLES if t.name not in new])
    assert set(old.upgrade()) == {"individual_blocks", "removed_groups"}
    assert {"individual_blocks", "removed_groups"} <= set(inspect(old.engine).get_table_names())
    import_school(old, DEMO_SCHOOL)
    assert old.directory.user(ANA).blocked_individually  # type: ignore[union-attr]
    old.dispose()


# -- the director's conversation -----------------------------------------------------------------


def _talk(store: Store, data: dict[str, Any]) -> Conversation:
    import_school(store, data)
    kb, matcher = shared_kb_and_matcher()
    return Conversation(Assistant(Settings(), store, kb, matcher, clock=Clock()), DIRECTOR)


def test_two_pupils_blocked_alone_are_both_named_in_the_plural(store: Store) -> None:
    data = copy.deepcopy(_demo())
    for pupil in ("usr-e01", "usr-e02"):
        _user(data, pupil)["blocked"] = True
    director = _talk(store, data)
    director.say("bloque les élèves")
    director.press("Confirmer")
    seen = director.say("débloque les élèves")
    assert "Parmi eux, 2 comptes ont été bloqués individuellement" in seen.text
    assert "Faut-il les garder bloqués ?" in seen.text and "les débloque aussi" in seen.text
    assert "(élève)" in seen.text
    assert seen.buttons == ["Tout débloquer", "Garder ces 2 comptes bloqués", "Annuler"]
    done = director.press("Garder ces 2 comptes bloqués")
    assert "18 comptes débloqués" in done.text
    assert "2 comptes restent bloqués comme demandé" in done.text
    blocked = [u.id for u in store.directory.users(DEMO, profiles=["Student"]) if u.blocked]
    assert blocked == ["usr-e01", "usr-e02"]
    entry = store.audit.entries()[-1]
    assert (entry.action, entry.outcome) == ("action.unblock", "done")
    assert len(entry.targets) == 18 and "usr-e01" not in entry.targets


def test_many_accounts_blocked_alone_are_named_up_to_ten(store: Store) -> None:
    data = copy.deepcopy(_demo())
    pupils = [u["id"] for u in data["users"] if u["profile"] == "Student"][:12]
    for pupil in pupils:
        _user(data, pupil)["blocked"] = True
    director = _talk(store, data)
    seen = director.say("débloque les élèves")
    # 12 of 20 pupils blocked one by one, the others not blocked: nothing to keep apart.
    assert "Ces 12 comptes ont été bloqués individuellement" in seen.text
    assert "et 2 autres" in seen.text
    assert seen.buttons == ["Confirmer", "Annuler"]
