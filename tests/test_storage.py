"""Store, SqlDirectory reads and changes, transactions, audit, conversations, module layout."""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import DEMO_SCHOOL
from bot.core.services import Services
from bot.storage.audit import to_json_line
from bot.storage.directory import SqlDirectory
from bot.storage.schoolfile import export_school, import_school
from bot.storage.store import Store
from intents.domain import NotFound
from tests.support import migrated_store

JJ = "0590123A"
PASTEUR = "0590124B"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with migrated_store(database_url) as opened:
        yield opened


@pytest.fixture
def demo(store: Store) -> Store:
    import_school(store, DEMO_SCHOOL)
    return store


@pytest.fixture
def directory(demo: Store) -> SqlDirectory:
    return demo.directory


def _user(data: dict, user_id: str) -> dict:
    return next(user for user in data["users"] if user["id"] == user_id)


def _group(data: dict, group_id: str) -> dict | None:
    return next((group for group in data["groups"] if group["id"] == group_id), None)


def _members(data: dict, group_id: str) -> list[str]:
    group = _group(data, group_id)
    assert group is not None
    return group["members"]


# --- store ------------------------------------------------------------------------------


def test_upgrade_is_idempotent(store: Store) -> None:
    assert store.upgrade() == []
    assert store.is_empty()


def test_in_memory_store_is_ready_and_shared_across_threads() -> None:
    import threading

    store = Store.in_memory()
    try:
        import_school(store, DEMO_SCHOOL)
        seen: list[bool] = []
        thread = threading.Thread(target=lambda: seen.append(store.is_empty()))
        thread.start()
        thread.join()
        assert seen == [False]
    finally:
        store.dispose()


def test_demo_is_loaded(demo: Store) -> None:
    assert not demo.is_empty()


def test_the_store_provides_the_services_the_core_uses() -> None:
    # The annotation is the check: mypy refuses it if Store stops matching Services.
    services: Services = Store.in_memory()
    try:
        with services.transaction():
            services.conversations.put("tg:1", {"step": 1})
            services.audit.record("x", "action.block", [], "done")
        assert services.conversations.get("tg:1") == {"step": 1}
        assert services.accounts.login_for("tg:1") is None
        assert services.directory.structures() == []
    finally:
        assert isinstance(services, Store)
        services.dispose()


def test_no_import_cycle_inside_storage() -> None:
    modules = {p.stem: p for p in (Path(__file__).parent.parent / "bot" / "storage").glob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        # Every import counts, those inside functions too: ast.walk sees the whole tree.
        named = {
            target.removeprefix("bot.storage.")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Import | ast.ImportFrom)
            for target in _imported(node)
        }
        graph[name] = (named & modules.keys()) - {name}
    assert "store" in graph["schoolfile"]  # the walk does see the imports
    finished: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            pytest.fail("import cycle: " + " → ".join(path[path.index(name) :] + (name,)))
        if name not in finished:
            for target in sorted(graph[name]):
                visit(target, (*path, name))
            finished.add(name)

    for name in sorted(graph):
        visit(name, ())
    # The components need only the tables: the store hands them out, never the reverse.
    for component in ("accounts", "audit", "conversations", "directory", "records"):
        assert "store" not in graph[component], component


def _imported(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = (node.module or "") if node.level == 0 else f"bot.storage.{node.module or ''}"
    return {base.rstrip(".")} | {f"{base.rstrip('.')}.{alias.name}" for alias in node.names}


# --- reads ------------------------------------------------------------------------------


def test_structures_and_classes(directory: SqlDirectory) -> None:
    assert [s.id for s in directory.structures()] == [JJ, PASTEUR]
    school = directory.structure(JJ)
    assert school is not None and school.circonscription == "Lille 1"
    assert directory.structure("nope") is None
    classes = {c.name: c for c in directory.classes(JJ)}
    assert classes["ULIS"].pupil_count == 0
    assert classes["CM2"].pupil_count == 4
    assert all(c.structure_id == JJ for c in classes.values())
    assert len(classes) == 9


def test_users_filters(directory: SqlDirectory) -> None:
    teachers = directory.users(JJ, ["Teacher"])
    logins = [u.login for u in teachers]
    assert "nathalie.leroy" in logins and "julien.leroy" in logins
    # Pre-deleted teacher is hidden unless asked, and shows up when asked.
    assert "bernard.vanacker" not in logins
    removed = directory.users(JJ, ["Teacher"], include_removed=True)
    assert "bernard.vanacker" in [u.login for u in removed]
    # Teachers shared with Pasteur are members of both.
    assert {"lucie.fontaine", "hugo.lambert"} <= {u.login for u in directory.users(PASTEUR)}
    everyone = directory.users(JJ)
    assert {u.profile for u in everyone} == {
        "Teacher",
        "Student",
        "Relative",
        "Guest",
        "Personnel",
    }


def test_user_records(directory: SqlDirectory) -> None:
    director = directory.user_by_login("claire.martin")
    assert director is not None
    assert director.functions == ("DIRECTOR",)
    assert director.full_name == "Claire Martin"
    assert director.is_live and not director.is_manual
    parent = directory.user_by_login("parent.demo")
    assert parent is not None and parent.profile == "Relative"
    guest = directory.user("usr-m02")
    assert guest is not None and guest.is_manual and not guest.activated
    left = directory.user("usr-p15")
    assert left is not None and left.deleted == "2023-09-01" and not left.is_live
    assert directory.user("usr-none") is None
    assert directory.user_by_login("nobody") is None
    hugo = directory.user_by_login("hugo.lambert")
    assert hugo is not None and hugo.structures == (PASTEUR, JJ)
    assert hugo.home_structure == PASTEUR


def test_groups_and_favorites(directory: SqlDirectory) -> None:
    groups = {g.name: g for g in directory.groups(JJ)}
    assert groups["Resp-Affect-GAR"].member_ids == ("usr-t01",)
    assert groups["Enseignants de l'école"].type == "ProfileGroup"
    assert "usr-p15" in groups["APE 2021-2022"].member_ids
    assert directory.group("grp-pasteur-gar") is not None
    assert directory.group("grp-none") is None
    favorites = directory.share_favorites(JJ)
    assert [f.name for f in favorites] == ["Collègues 2021", "Parents CP A 2022-2023"]
    assert favorites[0].owner_id == "usr-t01"
    assert directory.share_favorites(PASTEUR) == []


# --- changes ----------------------------------------------------------------------------


def test_set_blocked(demo: Store) -> None:
    directory = demo.directory
    result = directory.set_blocked(JJ, ["Relative"], True)
    # Ana Ferreira was already blocked; Gérard Lenoir is deleted; Pasteur parents untouched.
    assert result.unchanged == ("usr-p12",)
    assert "usr-p15" not in result.changed
    assert "usr-p40" not in result.changed
    assert "usr-m01" in result.changed
    exported = export_school(demo)
    assert _user(exported, "usr-p01")["blocked"] is True
    assert _user(exported, "usr-p15")["blocked"] is False
    assert _user(exported, "usr-p40")["blocked"] is False
    again = directory.set_blocked(JJ, ["Relative"], True)
    assert again.changed == ()
    back = directory.set_blocked(JJ, ["Relative", "Student"], False)
    assert "usr-p12" in back.changed and "usr-e01" in back.unchanged


def test_attach_teacher_to_class(demo: Store) -> None:
    directory = demo.directory
    directory.attach_teacher_to_class("usr-t09", "cls-ce2")
    directory.attach_teacher_to_class("usr-t09", "cls-ce2")  # idempotent
    assert directory.user("usr-t09").classes == ("cls-ce2",)  # type: ignore[union-attr]
    # A Pasteur teacher put in a Jean Jaurès class joins that structure too, as in the ENT.
    directory.attach_teacher_to_class("usr-t21", "cls-cm1")
    sophie = _user(export_school(demo), "usr-t21")
    assert sophie["classes"] == ["cls-pasteur-ps", "cls-cm1"]
    assert sophie["structures"] == [PASTEUR, JJ]
    with pytest.raises(NotFound):
        directory.attach_teacher_to_class("usr-t09", "cls-none")
    with pytest.raises(NotFound):
        directory.attach_teacher_to_class("usr-none", "cls-ce2")


def test_detach_teacher_from_structure(demo: Store) -> None:
    demo.directory.detach_teacher_from_structure("usr-t11", JJ)
    exported = export_school(demo)
    hugo = _user(exported, "usr-t11")
    assert hugo["structures"] == [PASTEUR]
    assert hugo["classes"] == ["cls-pasteur-ms-gs"]
    assert hugo["home_structure"] == PASTEUR
    assert "usr-t11" not in _members(exported, "grp-pg-teachers")
    assert "usr-t11" in _members(exported, "grp-pasteur-pg-teachers")
    assert [u.id for u in demo.directory.users(JJ, ["Teacher"]) if u.id == "usr-t11"] == []


def test_delete_group(demo: Store) -> None:
    demo.directory.delete_group("grp-chorale-2025")
    assert demo.directory.group("grp-chorale-2025") is None
    assert _group(export_school(demo), "grp-chorale-2025") is None
    with pytest.raises(NotFound):
        demo.directory.delete_group("grp-chorale-2025")


def test_remove_manual_account(demo: Store) -> None:
    directory = demo.directory
    assert directory.remove_manual_account("usr-m02", date(2025, 9, 2)) == "deleted"
    assert directory.remove_manual_account("usr-m03", date(2025, 9, 2)) == "pre_deleted"
    exported = export_school(demo)
    assert _user(exported, "usr-m02")["deleted"] == "2025-09-02"
    assert "pre_deleted" not in _user(exported, "usr-m02")
    assert _user(exported, "usr-m03")["pre_deleted"] == "2025-09-02"
    live = {u.id for u in directory.users(JJ, ["Guest"])}
    assert live == set()


def test_add_group_members_and_create_group(demo: Store) -> None:
    directory = demo.directory
    added = directory.add_group_members("grp-chorale-2025", ["usr-e16", "usr-e12", "usr-e16"])
    assert added == ("usr-e16",)
    chorale = directory.group("grp-chorale-2025")
    assert chorale is not None and chorale.member_ids[-1] == "usr-e16"
    created = directory.create_group(JJ, "Chorale 2026-2027", "ManualGroup")
    assert created.id.startswith("grp-chorale-2026-2027-")
    assert created.member_ids == ()
    assert directory.add_group_members(created.id, ["usr-t07"]) == ("usr-t07",)
    assert directory.groups(JJ)[-1].id == created.id
    exported = export_school(demo)
    assert _group(exported, created.id) == {
        "id": created.id,
        "structure": JJ,
        "name": "Chorale 2026-2027",
        "type": "ManualGroup",
        "members": ["usr-t07"],
    }
    # What the assistant changed is still a valid school file.
    again = Store.in_memory()
    try:
        import_school(again, exported)
        assert export_school(again) == exported
    finally:
        again.dispose()
    with pytest.raises(NotFound):
        directory.add_group_members("grp-chorale-2025", ["usr-none"])
    with pytest.raises(NotFound):
        directory.create_group("0000000X", "x", "ManualGroup")


# --- transactions -----------------------------------------------------------------------


def test_transaction_rolls_back_everything(demo: Store) -> None:
    before = export_school(demo)
    directory = demo.directory
    with pytest.raises(RuntimeError, match="boom"), directory.transaction():
        directory.set_blocked(JJ, ["Relative"], True)
        # Reads inside the block see the block's own writes.
        assert directory.user("usr-p01").blocked  # type: ignore[union-attr]
        directory.delete_group("grp-ape-2021")
        assert directory.group("grp-ape-2021") is None
        raise RuntimeError("boom")
    assert export_school(demo) == before


def test_transaction_commits_together(demo: Store, database_url: str) -> None:
    directory = demo.directory
    with directory.transaction():
        directory.attach_teacher_to_class("usr-t09", "cls-ce1")
        group = directory.create_group(JJ, "Soutien CE1", "ManualGroup")
        directory.add_group_members(group.id, ["usr-t09", "usr-e11"])
    other = Store.from_url(database_url)
    try:
        assert other.directory.user("usr-t09").classes == ("cls-ce1",)  # type: ignore[union-attr]
        stored = other.directory.group(group.id)
        assert stored is not None and stored.member_ids == ("usr-t09", "usr-e11")
    finally:
        other.dispose()


def test_failed_change_inside_transaction_rolls_back(demo: Store) -> None:
    before = export_school(demo)
    directory = demo.directory
    with pytest.raises(NotFound), directory.transaction():
        directory.remove_manual_account("usr-m02", date(2025, 9, 1))
        directory.delete_group("grp-does-not-exist")
    assert export_school(demo) == before


# --- audit ------------------------------------------------------------------------------


def test_audit_record_and_json_line(store: Store) -> None:
    audit = store.audit
    first = audit.record(
        "claire.martin",
        "action.block",
        ["usr-p01", "usr-p02"],
        "done",
        "2 comptes bloqués",
        JJ,
        at=datetime(2025, 9, 1, 8, 30, tzinfo=UTC),
    )
    audit.record(
        "claire.martin",
        "action.delete_group",
        ["grp-gar"],
        "refused",
        "interdit",
        JJ,
        at=datetime(2025, 9, 1, 9, 0, tzinfo=UTC),
    )
    audit.record("marc.dubois", "action.block", [], "cancelled", "", PASTEUR)
    entries = audit.entries()
    assert [e.outcome for e in entries] == ["done", "refused", "cancelled"]
    assert entries[0] == first
    assert to_json_line(entries[0]) == {
        "at": "2025-09-01T08:30:00+00:00",
        "who": "claire.martin",
        "action": "action.block",
        "targets": ["usr-p01", "usr-p02"],
        "outcome": "done",
        "detail": "2 comptes bloqués",
        "structure_id": JJ,
        "structure": None,  # no names given: the school's name is not guessed
    }
    assert [e.who for e in audit.entries(structure_id=PASTEUR)] == ["marc.dubois"]
    assert [e.outcome for e in audit.entries(limit=1)] == ["cancelled"]
    with pytest.raises(ValueError):
        audit.record("x", "action.block", [], "maybe", "", None)


def test_audit_entry_recorded_inside_a_rolled_back_transaction_is_lost(demo: Store) -> None:
    # Documented behaviour: record failures after the block, not inside it.
    with pytest.raises(RuntimeError), demo.transaction():
        demo.audit.record("claire.martin", "action.block", [], "done", "", JJ)
        raise RuntimeError
    assert demo.audit.entries() == []


# --- conversations ----------------------------------------------------------------------


def test_conversations_persist_across_stores(database_url: str) -> None:
    first = Store.from_url(database_url)
    first.upgrade()
    try:
        assert first.conversations.get("tg:42") == {}
        first.conversations.put("tg:42", {"pending": {"action": "block"}, "buttons": ["Oui"]})
        first.conversations.put("tg:42", {"pending": {"action": "block", "n": 3}, "é": "à"})
    finally:
        first.dispose()
    second = Store.from_url(database_url)
    second.upgrade()
    try:
        assert second.conversations.get("tg:42") == {
            "pending": {"action": "block", "n": 3},
            "é": "à",
        }
        assert second.conversations.get("tg:43") == {}
        second.conversations.clear("tg:42")
        second.conversations.clear("tg:42")
        assert second.conversations.get("tg:42") == {}
    finally:
        second.dispose()


# --- scale ------------------------------------------------------------------------------


def test_a_school_of_a_thousand_users_reads_fast() -> None:
    classes = [{"id": f"cls-{n}", "name": f"Classe {n}", "level": "CP"} for n in range(40)]
    users = []
    for n in range(1000):
        profile = "Student" if n % 2 else "Relative"
        users.append(
            {
                "id": f"usr-{n:04d}",
                "login": f"user.{n}",
                "first_name": "Prénom",
                "last_name": f"Nom{n}",
                "profile": profile,
                "source": "AAF1D",
                "activated": True,
                "blocked": False,
                "structures": [JJ],
                "home_structure": JJ,
                "classes": [f"cls-{n % 40}"] if profile == "Student" else [],
                "functions": [],
                "birth_date": None,
                **({"children": [f"usr-{n + 1:04d}"]} if profile == "Relative" else {}),
            }
        )
    data = {
        "structures": [
            {
                "id": JJ,
                "name": "École",
                "city": "Lille",
                "circonscription": "Lille 1",
                "classes": classes,
            }
        ],
        "users": users,
        "groups": [
            {
                "id": "grp-all",
                "structure": JJ,
                "name": "Tous",
                "type": "ProfileGroup",
                "members": [u["id"] for u in users],
            }
        ],
    }
    store = Store.in_memory()
    try:
        import_school(store, data)
        start = time.perf_counter()
        everyone = store.directory.users(JJ)
        store.directory.classes(JJ)
        store.directory.groups(JJ)
        result = store.directory.set_blocked(JJ, ["Relative"], True)
        elapsed = time.perf_counter() - start
        assert len(everyone) == 1000 and len(result.changed) == 500
        assert elapsed < 2.0
    finally:
        store.dispose()


def test_naive_datetimes_are_taken_as_local_time(store: Store) -> None:
    naive = datetime(2025, 9, 1, 8, 0)
    entry = store.audit.record("x", "action.block", [], "done", "", None, at=naive)
    assert entry.at == naive.astimezone(UTC)
    assert entry.at.tzinfo is not None
    assert store.audit.entries()[0].at - entry.at == timedelta(0)
