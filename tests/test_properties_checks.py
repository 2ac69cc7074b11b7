"""What the property-based tests (tests/test_properties.py) check after every step: the
directory's rules, and that a change only comes with the confirmation that allows it and its
`done` audit entry. The tests here make sure each check can fail."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlmodel import col

from bot.app import DEMO_SCHOOL
from bot.storage.audit import AuditEntry
from bot.storage.school_rules import validate
from bot.storage.schoolfile import export_school, import_school
from bot.storage.store import Store
from bot.storage.tables import DIRECTORY_TABLES, ClassMemberRow
from intents.admin.common import MANUAL_GROUP, is_gar_group
from tests.support import DEMO

# A proposal may be confirmed this long after it was shown (bot/core/confirmation.py).
LIFETIME = timedelta(minutes=10)
FAMILIES = {"Relative", "Student"}

Row = dict[str, Any]


# -- snapshots ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """Every row of every directory table (by primary key), and the whole audit log."""

    tables: dict[str, dict[tuple[Any, ...], Row]]
    audit: dict[int, AuditEntry]
    export: dict[str, Any]

    def rows(self, table: str) -> dict[tuple[Any, ...], Row]:
        return self.tables[table]

    def users(self) -> dict[str, Row]:
        return {key[0]: row for key, row in self.tables["users"].items()}

    def pairs(self, table: str) -> set[tuple[Any, ...]]:
        return set(self.tables[table])

    def structures_of(self, user_id: str) -> set[str]:
        return {s for u, s in self.pairs("user_structures") if u == user_id}

    def class_structure(self) -> dict[str, str]:
        return {key[0]: row["structure_id"] for key, row in self.tables["classes"].items()}

    def groups(self) -> dict[str, Row]:
        return {key[0]: row for key, row in self.tables["groups"].items()}

    def pupils_in(self, class_id: str) -> int:
        """Live pupils of a class (bot/storage/directory.classes counts them so)."""
        users = self.users()
        return sum(
            1
            for user_id, member_class in self.pairs("class_members")
            if member_class == class_id
            and users[user_id]["profile"] == "Student"
            and users[user_id]["deleted"] is None
            and users[user_id]["pre_deleted"] is None
        )


def snapshot(store: Store) -> Snapshot:
    """The directory and the audit log as they are now (committed)."""
    tables: dict[str, dict[tuple[Any, ...], Row]] = {}
    with store.session() as session:
        for table in DIRECTORY_TABLES:
            keys = [c.name for c in table.primary_key.columns]
            tables[table.name] = {
                tuple(row[k] for k in keys): dict(row)
                for row in session.execute(select(table)).mappings()
            }
    audit = {entry.id: entry for entry in store.audit.entries()}
    return Snapshot(tables, audit, export_school(store))


@dataclass(frozen=True)
class Diff:
    """Per table: rows added, rows removed, rows changed (old, new)."""

    added: dict[str, dict[tuple[Any, ...], Row]]
    removed: dict[str, dict[tuple[Any, ...], Row]]
    changed: dict[str, dict[tuple[Any, ...], tuple[Row, Row]]]

    @property
    def empty(self) -> bool:
        return not any((*self.added.values(), *self.removed.values(), *self.changed.values()))

    def tables(self) -> set[str]:
        return {
            t for part in (self.added, self.removed, self.changed) for t, v in part.items() if v
        }

    def describe(self) -> str:
        return json.dumps(
            {
                "added": {t: list(v.values()) for t, v in self.added.items() if v},
                "removed": {t: list(v.values()) for t, v in self.removed.items() if v},
                "changed": {t: list(v.values()) for t, v in self.changed.items() if v},
            },
            default=str,
            ensure_ascii=False,
        )[:3000]


def diff(before: Snapshot, after: Snapshot) -> Diff:
    added, removed, changed = {}, {}, {}
    for name, old in before.tables.items():
        new = after.tables[name]
        added[name] = {k: r for k, r in new.items() if k not in old}
        removed[name] = {k: r for k, r in old.items() if k not in new}
        changed[name] = {k: (old[k], new[k]) for k in old.keys() & new.keys() if old[k] != new[k]}
    return Diff(added, removed, changed)


# -- who may change what -----------------------------------------------------------------------
@dataclass(frozen=True)
class Shown:
    """A confirmation the core showed to one speaker (a reply carrying a pending change)."""

    pending_id: str
    intent: str | None
    labels: tuple[str, ...]
    at: datetime


@dataclass(frozen=True)
class StepContext:
    """One step as the test sees it before handing it to the core."""

    speaker_key: str
    # The directory login linked to the speaker's chat before the step (the store says).
    login: str | None
    private: bool
    now: datetime
    # The confirmation this step may stand for (a press of its button, « oui », its label
    # typed), as shown earlier to this same speaker; None for any other step.
    confirms: Shown | None
    # The step pressed the « Effacer mes données » button of /oublier (audit pseudonymised).
    may_forget: bool = False
    # A run of the due jobs, not a message.
    job_run: bool = False


def director_schools(before: Snapshot, login: str | None) -> set[str]:
    """The schools a login may change: a live account with the DIRECTOR function (the demo
    school's directors), its structures; nothing for anyone else."""
    if login is None:
        return set()
    user = next((u for u in before.users().values() if u["login"] == login), None)
    if user is None or user["deleted"] is not None or user["pre_deleted"] is not None:
        return set()
    if "DIRECTOR" not in json.loads(user["functions"]):
        return set()
    return before.structures_of(user["id"])


def check_step(before: Snapshot, after: Snapshot, step: StepContext) -> Diff:
    """No change to the directory without a confirmation, pressed or said by the speaker it
    was shown to, allowed to do it; every change with its `done` audit entry."""
    change = diff(before, after)
    _check_old_audit_kept(before, after, step)
    new = [e for i, e in sorted(after.audit.items()) if i not in before.audit]
    done = [e for e in new if e.outcome == "done"]
    if not step.job_run:
        transport = step.speaker_key.split(":", 1)[0]
        others = [
            e
            for e in new
            if e.who != step.speaker_key
            # /oublier pseudonymises in the same step the entry of the change it drops.
            and not (step.may_forget and e.who.startswith(f"{transport}:anonyme-"))
        ]
        assert not others, f"audit entries written for someone else: {others}"
    if not done:
        assert change.empty, f"directory changed without a `done` audit entry: {change.describe()}"
        return change
    assert len(done) == 1, f"several changes done in one step: {done}"
    entry = done[0]
    assert not step.job_run, f"a job run changed the directory: {entry}"
    shown = step.confirms
    assert shown is not None, f"a change done on a step that confirms nothing: {entry}"
    assert step.private, f"a change done from a group chat: {entry}"
    assert entry.action == shown.intent, f"done {entry.action}, shown {shown.intent}"
    assert step.now - shown.at <= LIFETIME, f"a change done {step.now - shown.at} after: {entry}"
    allowed = director_schools(before, step.login)
    assert entry.structure_id in allowed, (
        f"{step.login} ({step.speaker_key}) may not change {entry.structure_id}: {entry}"
    )
    if not change.empty:
        ACTIONS.get(entry.action, _unknown_action)(before, change, entry, step)
    return change


def _check_old_audit_kept(before: Snapshot, after: Snapshot, step: StepContext) -> None:
    """The audit log is append-only; /oublier only replaces the speaker's transport id in
    the entries it wrote by a pseudonym of the same transport."""
    for entry_id, old in before.audit.items():
        assert entry_id in after.audit, f"audit entry lost: {old}"
        now = after.audit[entry_id]
        if now == old:
            continue
        transport = step.speaker_key.split(":", 1)[0]
        assert (
            step.may_forget
            and old.who == step.speaker_key
            and now.who.startswith(f"{transport}:anonyme-")
            and replace(now, who=old.who) == old
        ), f"audit entry rewritten: {old} → {now}"


def _only(change: Diff, tables: set[str], entry: AuditEntry) -> None:
    extra = change.tables() - tables
    assert not extra, f"{entry.action} also changed {extra}: {change.describe()}"


def _changed_columns(change: Diff, table: str) -> set[str]:
    return {k for old, new in change.changed[table].values() for k in old if old[k] != new[k]}


def _member(before: Snapshot, user_id: str, structure: str | None) -> bool:
    return structure in before.structures_of(user_id)


def _block_like(blocked: bool) -> ActionCheck:
    def check(before: Snapshot, change: Diff, entry: AuditEntry, step: StepContext) -> None:
        _only(change, {"users", "individual_blocks"}, entry)
        assert _changed_columns(change, "users") <= {"blocked"}, change.describe()
        assert not change.added["individual_blocks"], change.describe()
        if blocked:
            assert not change.removed["individual_blocks"], change.describe()
        users = before.users()
        flipped = {key[0] for key in change.changed["users"]}
        for user_id in flipped:
            user = users[user_id]
            assert user["profile"] in FAMILIES, f"{entry.action} changed a {user['profile']}"
            assert user["deleted"] is None and user["pre_deleted"] is None, user
            assert _member(before, user_id, entry.structure_id), (user_id, entry)
            assert change.changed["users"][(user_id,)][1]["blocked"] is blocked
        lifted = {key[0] for key in change.removed["individual_blocks"]}
        assert lifted <= flipped, "an individual block lifted on an account left blocked"
        assert flipped == set(entry.targets), f"targets {entry.targets}, changed {flipped}"

    return check


def _attach(before: Snapshot, change: Diff, entry: AuditEntry, step: StepContext) -> None:
    _only(change, {"class_members"}, entry)
    assert not change.removed["class_members"], change.describe()
    links = list(change.added["class_members"])
    assert len(links) == 1, change.describe()
    teacher, class_id = links[0]
    user = before.users()[teacher]
    assert user["profile"] == "Teacher" and user["deleted"] is None, user
    assert user["pre_deleted"] is None, user
    assert before.class_structure()[class_id] == entry.structure_id, (class_id, entry)
    assert _member(before, teacher, entry.structure_id), (teacher, entry)
    assert before.pupils_in(class_id) > 0, f"teacher attached to {class_id}, a class without pupil"
    assert set(entry.targets) == {teacher, class_id}, entry


def _detach(before: Snapshot, change: Diff, entry: AuditEntry, step: StepContext) -> None:
    _only(change, {"user_structures", "class_members", "group_members"}, entry)
    assert not any(change.added.values()) and not any(change.changed.values()), change.describe()
    assert list(change.removed["user_structures"]) and len(entry.targets) == 1, change.describe()
    teacher = entry.targets[0]
    assert list(change.removed["user_structures"]) == [(teacher, entry.structure_id)]
    user = before.users()[teacher]
    assert user["profile"] == "Teacher", user
    assert user["home_structure"] != entry.structure_id, "detached from the home school"
    classes = before.class_structure()
    for user_id, class_id in change.removed["class_members"]:
        assert user_id == teacher and classes[class_id] == entry.structure_id
    groups = before.groups()
    for group_id, user_id in change.removed["group_members"]:
        assert user_id == teacher and groups[group_id]["structure_id"] == entry.structure_id


def _delete_group(before: Snapshot, change: Diff, entry: AuditEntry, step: StepContext) -> None:
    _only(change, {"groups", "group_members", "removed_groups"}, entry)
    removed = [key[0] for key in change.removed["groups"]]
    assert removed == list(entry.targets), (removed, entry)
    group = before.groups()[removed[0]]
    assert group["structure_id"] == entry.structure_id, group
    assert group["type"] == MANUAL_GROUP, f"an automatic group deleted: {group}"
    assert not is_gar_group(group["name"]), f"the GAR group deleted: {group}"
    assert {g for g, _ in change.removed["group_members"]} <= {group["id"]}
    assert {g for g, _ in before.pairs("group_members") if g == group["id"]} <= {
        g for g, _ in change.removed["group_members"]
    }
    remembered = change.added["removed_groups"] or {
        k: new for k, (_, new) in change.changed["removed_groups"].items()
    }
    assert [(r["id"], r["name"]) for r in remembered.values()] == [(group["id"], group["name"])]
    assert not any(change.added[t] for t in ("groups", "group_members")), change.describe()


def _remove_account(before: Snapshot, change: Diff, entry: AuditEntry, step: StepContext) -> None:
    _only(change, {"users"}, entry)
    assert _changed_columns(change, "users") <= {"deleted", "pre_deleted"}, change.describe()
    ids = {key[0] for key in change.changed["users"]}
    assert ids == set(entry.targets), (ids, entry)
    for old, new in change.changed["users"].values():
        assert old["source"] == "MANUAL", f"a non-manual account removed: {old}"
        assert old["deleted"] is None and old["pre_deleted"] is None, old
        assert _member(before, old["id"], entry.structure_id), (old, entry)
        column = "pre_deleted" if old["activated"] else "deleted"
        assert new[column] == step.now.date().isoformat(), (old, new)


def _gar(before: Snapshot, change: Diff, entry: AuditEntry, step: StepContext) -> None:
    _only(change, {"group_members"}, entry)
    assert not change.removed["group_members"], change.describe()
    groups = before.groups()
    users = before.users()
    added = set()
    for group_id, user_id in change.added["group_members"]:
        group = groups[group_id]
        assert is_gar_group(group["name"]), f"GAR managers added to {group['name']}"
        assert group["structure_id"] == entry.structure_id, group
        user = users[user_id]
        assert user["profile"] == "Teacher" and user["deleted"] is None, user
        assert _member(before, user_id, entry.structure_id), (user_id, entry)
        added.add(user_id)
    assert added == set(entry.targets), (added, entry)


def _unknown_action(before: Snapshot, change: Diff, entry: AuditEntry, step: StepContext) -> None:
    raise AssertionError(f"{entry.action} changed the directory: {change.describe()}")


ActionCheck = Callable[[Snapshot, Diff, AuditEntry, StepContext], None]
ACTIONS: dict[str, ActionCheck] = {
    "action.block": _block_like(True),
    "action.unblock": _block_like(False),
    "action.attach_teacher": _attach,
    "action.detach_teacher": _detach,
    "action.delete_group": _delete_group,
    "action.remove_manual_account": _remove_account,
    "action.gar_managers": _gar,
}


# -- the directory's rules ---------------------------------------------------------------------
def check_directory(now: Snapshot, initial: Snapshot) -> None:
    """The rules of bot/storage/school_rules.py, and those the director's actions keep
    (intents/admin/*, bot/storage/directory.py), hold on the directory as it is now."""
    problems = validate(now.export)
    assert not problems, problems
    for table in ("structures", "classes", "share_favorites", "share_favorite_members"):
        assert now.rows(table) == initial.rows(table), f"{table} changed"
    users, first = now.users(), initial.users()
    assert users.keys() == first.keys(), "accounts created or erased"
    mutable = {"blocked", "deleted", "pre_deleted"}
    for user_id, user in users.items():
        was = first[user_id]
        fixed = {k: v for k, v in user.items() if k not in mutable}
        assert fixed == {k: v for k, v in was.items() if k not in mutable}, (was, user)
        _check_account_life(was, user)
    classes = now.class_structure()
    for user_id, class_id in now.pairs("class_members"):
        # A teacher's class links stay within the schools they belong to (detach removes them,
        # attach only reaches the classes of the teacher's school).
        assert classes[class_id] in now.structures_of(user_id), (user_id, class_id)
        if (user_id, class_id) not in initial.pairs("class_members"):
            assert users[user_id]["profile"] == "Teacher", (user_id, class_id)
            assert now.pupils_in(class_id) > 0, f"{user_id} in {class_id}, a class without pupil"
    _check_memberships(now, initial)
    _check_groups(now, initial)
    for (user_id,) in now.rows("individual_blocks"):
        assert users[user_id]["blocked"], f"{user_id} individually blocked but not blocked"
    assert now.pairs("individual_blocks") <= initial.pairs("individual_blocks")


def _check_account_life(was: Row, user: Row) -> None:
    """Removed accounts stay removed; only manual ones are removed, activated ones into
    pre-deletion; only pupils' and parents' accounts are blocked or unblocked."""
    for column in ("deleted", "pre_deleted"):
        if was[column] is not None:
            assert user[column] == was[column], (was, user)
    if (user["deleted"], user["pre_deleted"]) != (was["deleted"], was["pre_deleted"]):
        assert was["source"] == "MANUAL", f"a non-manual account removed: {user}"
        expected = "pre_deleted" if was["activated"] else "deleted"
        other = "deleted" if expected == "pre_deleted" else "pre_deleted"
        assert user[expected] is not None and user[other] == was[other], (was, user)
    if user["blocked"] != was["blocked"]:
        assert was["profile"] in FAMILIES, f"a {was['profile']} account (un)blocked: {user}"


def _check_memberships(now: Snapshot, initial: Snapshot) -> None:
    """Nobody joins a school; only teachers leave one, never their home school."""
    users = now.users()
    assert now.pairs("user_structures") <= initial.pairs("user_structures"), "a school joined"
    for user_id, structure in initial.pairs("user_structures") - now.pairs("user_structures"):
        assert users[user_id]["profile"] == "Teacher", (user_id, structure)
        assert users[user_id]["home_structure"] != structure, (user_id, structure)


def _check_groups(now: Snapshot, initial: Snapshot) -> None:
    """No group is created (Resp-Affect-GAR least of all); only manual groups other than
    Resp-Affect-GAR are deleted, and remembered as such; members belong to the school."""
    groups, first = now.groups(), initial.groups()
    gar = {g for g, row in groups.items() if is_gar_group(row["name"])}
    assert gar == {g for g, row in first.items() if is_gar_group(row["name"])}, "GAR group"
    assert groups.keys() <= first.keys(), f"groups created: {groups.keys() - first.keys()}"
    for group_id, row in groups.items():
        assert row == first[group_id], (first[group_id], row)
    remembered = {key[0]: row for key, row in now.rows("removed_groups").items()}
    for group_id in first.keys() - groups.keys():
        gone = first[group_id]
        assert gone["type"] == MANUAL_GROUP and not is_gar_group(gone["name"]), gone
        assert remembered.get(group_id, {}).get("name") == gone["name"], group_id
    for group_id, user_id in now.pairs("group_members"):
        structure = groups[group_id]["structure_id"]
        assert structure in now.structures_of(user_id), (group_id, user_id)
        if (group_id, user_id) not in initial.pairs("group_members"):
            assert is_gar_group(groups[group_id]["name"]), (group_id, user_id)
            assert users_profile(now, user_id) == "Teacher", (group_id, user_id)


def users_profile(now: Snapshot, user_id: str) -> str:
    return str(now.users()[user_id]["profile"])


# -- the checks can fail -----------------------------------------------------------------------
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
DIRECTOR_STEP = StepContext("tg:director", "claire.martin", True, NOW, None)


@pytest.fixture
def demo() -> Store:
    store = Store.in_memory()
    import_school(store, copy.deepcopy(json.loads(DEMO_SCHOOL.read_text(encoding="utf-8"))))
    return store


def _shown(intent: str) -> Shown:
    return Shown("p1", intent, ("Confirmer",), NOW - timedelta(minutes=1))


def test_the_demo_school_keeps_every_rule(demo: Store) -> None:
    first = snapshot(demo)
    check_directory(first, first)
    assert check_step(first, snapshot(demo), DIRECTOR_STEP).empty


def test_a_change_without_a_done_entry_is_caught(demo: Store) -> None:
    before = snapshot(demo)
    demo.directory.set_blocked(DEMO, ["Relative"], True)
    with pytest.raises(AssertionError, match="without a `done` audit entry"):
        check_step(before, snapshot(demo), DIRECTOR_STEP)


def test_a_change_on_a_step_that_confirms_nothing_is_caught(demo: Store) -> None:
    before = snapshot(demo)
    changed = demo.directory.set_blocked(DEMO, ["Relative"], True).changed
    demo.audit.record("tg:director", "action.block", list(changed), "done", "", DEMO, NOW)
    with pytest.raises(AssertionError, match="confirms nothing"):
        check_step(before, snapshot(demo), DIRECTOR_STEP)
    # Shown to the director and confirmed in time, the same change passes…
    confirmed = replace(DIRECTOR_STEP, confirms=_shown("action.block"))
    check_step(before, snapshot(demo), confirmed)
    # …but not by a parent, nor from a group chat, nor 11 minutes later.
    for step, words in (
        (replace(confirmed, login="parent.demo"), "may not change"),
        (replace(confirmed, login="marc.dubois"), "may not change"),
        (replace(confirmed, private=False), "group chat"),
        (replace(confirmed, now=NOW + timedelta(minutes=10)), "after"),
    ):
        with pytest.raises(AssertionError, match=words):
            check_step(before, snapshot(demo), step)


def test_a_change_unlike_the_action_confirmed_is_caught(demo: Store) -> None:
    before = snapshot(demo)
    demo.directory.delete_group("grp-gar", NOW.date())
    demo.audit.record("tg:director", "action.delete_group", ["grp-gar"], "done", "", DEMO, NOW)
    step = replace(DIRECTOR_STEP, confirms=_shown("action.delete_group"))
    with pytest.raises(AssertionError, match="GAR group deleted"):
        check_step(before, snapshot(demo), step)
    with pytest.raises(AssertionError, match="GAR group"):
        check_directory(snapshot(demo), before)


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda s: s.directory.attach_teacher_to_class("usr-t09", "cls-pasteur-ps"), "joined"),
        (lambda s: s.directory.detach_teacher_from_structure("usr-t02", DEMO), "usr-t02"),
        (lambda s: s.directory.create_group(DEMO, "Resp-Affect-GAR", MANUAL_GROUP), "GAR"),
        (lambda s: s.directory.delete_group("grp-pg-teachers"), "ProfileGroup"),
        (lambda s: s.directory.remove_manual_account("usr-t05", date(2026, 11, 28)), "non-man"),
        (lambda s: s.directory.set_blocked(DEMO, ["Teacher"], True), "Teacher account"),
        (lambda s: s.directory.add_group_members("grp-chorale-2025", ["usr-p01"]), "grp-chor"),
        (
            lambda s: s.directory.add_group_members("grp-pasteur-gar", ["usr-t02"]),
            "grp-pasteur-gar",
        ),
    ],
)
def test_each_rule_of_the_directory_can_fail(
    demo: Store, damage: Callable[[Store], object], words: str
) -> None:
    initial = snapshot(demo)
    damage(demo)
    with pytest.raises(AssertionError, match=words):
        check_directory(snapshot(demo), initial)


def test_a_pupil_without_a_class_breaks_the_school_file_rules(demo: Store) -> None:
    initial = snapshot(demo)
    with demo.session() as session:
        session.execute(delete(ClassMemberRow).where(col(ClassMemberRow.user_id) == "usr-e01"))
    with pytest.raises(AssertionError, match="élève"):
        check_directory(snapshot(demo), initial)


def test_a_rewritten_audit_entry_is_caught(demo: Store) -> None:
    demo.audit.record("tg:director", "action.block", [], "refused", "", DEMO, NOW)
    before = snapshot(demo)
    demo.audit.pseudonymise("tg:director", "tg:anonyme-1")
    with pytest.raises(AssertionError, match="rewritten"):
        check_step(before, snapshot(demo), DIRECTOR_STEP)
    check_step(before, snapshot(demo), replace(DIRECTOR_STEP, may_forget=True))
