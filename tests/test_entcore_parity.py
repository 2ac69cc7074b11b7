"""One school on both backends: each school file imported into the local directory
(`SqlDirectory`) and held by the fake ENT (`state_from_school`, read through the real HTTP
client and `EntcoreDirectory`) reads the same, for every structure a director's token covers.

What entcore itself shows differently is applied to the local reading by the `entcore_*`
functions below, each named after the entcore behaviour behind it; everything else must be
equal. `test_the_inherent_differences_show_on_the_demo_school` pins each of them down on the
demo school, so that none is applied without occurring.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from bot.app import DEMO_SCHOOL
from bot.entcore.client import EntcoreAuthError
from bot.entcore.directory import EntcoreDirectory
from bot.entcore.mapping import class_level
from bot.storage.directory import SqlDirectory
from bot.storage.school_rules import SchoolFileError
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from intents.domain import Group, SchoolClass, Structure, User
from tests.fake_entcore.from_school import SchoolOnEnt, state_from_school
from tests.fake_entcore.support import RunningEnt, running_ent

TILLEULS = Path(__file__).parent / "schools" / "les-tilleuls.json"
SCHOOLS: list[Path | str] = [
    DEMO_SCHOOL,
    *sorted((Path(__file__).parent / "schools").glob("*.json")),
    # What no file above has: see enriched_school.
    "enriched",
]


def _user(id: str, profile: str, structures: list[str], **fields: object) -> dict[str, Any]:
    names = {"login": f"login.{id}", "first_name": id.capitalize(), "last_name": "Test"}
    flags = {"source": "AAF1D", "activated": True, "blocked": False}
    links = {"home_structure": structures[0], "classes": [], "functions": []}
    record = {"id": id, "profile": profile, "structures": structures}
    return record | names | flags | links | fields


def enriched_school() -> dict[str, Any]:
    """Les Tilleuls with what no school file has yet: a FunctionalGroup, a class's profile
    group, a class whose level is not the first word of its name, a director of two
    schools, a pre-deleted teacher with a class, a deleted pupil, a never activated CSV
    account, a parent of both schools blocked alone, and one told not blocked alone."""
    data = json.loads(TILLEULS.read_text(encoding="utf-8"))
    tilleuls, ferry = "0620555X", "0620556Y"
    data["structures"][0]["classes"].append(
        {"id": "c-double", "name": "Double niveau CE2/CM1", "level": "CE2-CM1"}
    )
    data["users"] += [
        _user("dir2", "Teacher", [ferry, tilleuls], functions=["DIRECTOR"]),
        _user("gone", "Teacher", [tilleuls], classes=["c-cp"], pre_deleted="2026-06-30"),
        _user("px", "Student", [tilleuls], classes=["c-double"]),
        _user("py", "Student", [tilleuls], classes=["c-double"], deleted="2025-09-01"),
        _user("csv", "Guest", [tilleuls], source="CSV", activated=False),
        _user("r-both", "Relative", [tilleuls, ferry], blocked=True),
        _user("r-told", "Relative", [tilleuls], blocked=True, blocked_individually=False),
    ]
    # The school's profile group has every teacher, the new director too (as entcore's).
    next(g for g in data["groups"] if g["id"] == "g-ens")["members"].append("dir2")
    keys = ("id", "structure", "name", "type", "members")
    data["groups"] += [
        dict(zip(keys, group, strict=True))
        for group in (
            ("g-cycle3", tilleuls, "Cycle 3", "FunctionalGroup", ["t1", "t2", "gone"]),
            ("g-double", tilleuls, "Double niveau - Élèves", "ProfileGroup", ["px", "py"]),
            ("g-ferry-foot", ferry, "Foot", "ManualGroup", ["o-p1", "r-both", "py"]),
        )
    ]
    return data


def school_source(param: Path | str) -> Path | dict[str, Any]:
    return enriched_school() if param == "enriched" else Path(param)


@dataclass
class Both:
    """A school file on the local backend and on the fake ENT."""

    local: SqlDirectory
    ent: RunningEnt
    school: SchoolOnEnt

    def as_director(self) -> Iterator[tuple[str, set[str], EntcoreDirectory]]:
        """(login, ADML scope, their entcore directory) for every director of the file."""
        directors = self.school.directors()
        assert directors, "a school file without a director compares nothing"
        for login, scope in directors.items():
            # No cache: each read sees the ENT as it is.
            yield login, set(scope), self.ent.directory(self.school.token(login), 0)


@pytest.fixture(scope="module", params=SCHOOLS, ids=lambda p: Path(p).stem)
def both(request: pytest.FixtureRequest) -> Iterator[Both]:
    store = Store.in_memory()
    import_school(store, school_source(request.param))
    school = state_from_school(school_source(request.param))
    with running_ent(school.state) as ent:
        yield Both(store.directory, ent, school)
    store.dispose()


# --- normalising: order is not compared (each backend has its own) ------------------------


def norm_user(user: User | None) -> User | None:
    """The account with its lists sorted."""
    if user is None:
        return None
    return replace(
        user, structures=tuple(sorted(user.structures)), classes=tuple(sorted(user.classes))
    )


def norm_users(users: list[User]) -> list[User | None]:
    return [norm_user(u) for u in sorted(users, key=lambda u: u.id)]


def norm_groups(groups: list[Group]) -> list[Group]:
    return sorted(
        (replace(g, member_ids=tuple(sorted(g.member_ids))) for g in groups), key=lambda g: g.id
    )


# --- the inherent differences: the local reading as entcore shows it ----------------------


def entcore_structures(local: list[Structure], scope: set[str]) -> list[Structure]:
    """`GET /directory/structure/admin/list` gives the ADML's scope only (the local backend
    gives every school, the policy scoping them), and no city nor circonscription: entcore's
    `DefaultSchoolService.listAdmin` returns neither, the ENT has no circonscription."""
    return sorted(
        (replace(s, city="", circonscription="") for s in local if s.id in scope),
        key=lambda s: s.id,
    )


def entcore_classes(local: list[SchoolClass]) -> list[SchoolClass]:
    """`GET /directory/class/admin/list` has no level: the client derives it from the name."""
    return sorted((replace(c, level=class_level(c.name)) for c in local), key=lambda c: c.id)


def entcore_listed(local: list[User]) -> list[User]:
    """A school's accounts as `GET /directory/structure/:id/users` gives them."""
    live = [u for u in local if u.is_live]
    shown: list[User] = []
    for user in local:
        if user.deleted:
            # entcore deletes an account for good (User.delete): it is in no list.
            continue
        if user.pre_deleted:
            # Pre-deletion (User.backupRelationship) moves classes and functions to the
            # account's Backup node: its row has none.
            user = replace(user, classes=(), functions=())
        # The list has no administrative attachment: an account in one school is taken as
        # attached there, one in several is unknown (mapping.home_structure).
        home = user.structures[0] if len(user.structures) == 1 else None
        # One `blocked` flag per account: blocked one by one reads as a blocked account of a
        # profile the school's other live accounts are not blocked in
        # (mapping.mark_individual_blocks), not what the file said.
        alone = (
            user.is_live
            and user.blocked
            and any(u.profile == user.profile and not u.blocked for u in live)
        )
        shown.append(replace(user, home_structure=home, blocked_individually=alone))
    return shown


def entcore_groups(local: list[Group], users: dict[str, User]) -> list[Group]:
    """Group members are live accounts only: pre-deletion moves the account's group links to
    its Backup node, and a deleted account is gone (`GET /directory/user/admin/list`, and
    profile groups derived from the school's list)."""
    return [
        replace(g, member_ids=tuple(m for m in g.member_ids if users[m].is_live)) for g in local
    ]


def entcore_user(local: User | None, scope: set[str]) -> User | None:
    """One account as `GET /directory/user/:id` shows it to an ADML of `scope`."""
    if local is None or local.deleted:
        # Deleted for good: unknown to entcore.
        return None
    if not scope.intersection(local.structures):
        # UserAccessOrVisible refuses an account in none of the ADML's schools (401): None.
        return None
    if local.pre_deleted:
        # The node of a pre-deleted account has no structure, class nor function (moved to
        # its Backup). Its administrative attachment stays in the fake (FakeState.pre_delete).
        local = replace(local, structures=(), classes=(), functions=())
    # The client does not derive individual blocks for one account (EntcoreView.user): it
    # needs the whole school's list. A limit of bot/entcore/view.py, not of entcore.
    return replace(local, blocked_individually=False)


# --- the comparisons ----------------------------------------------------------------------


def test_structures_are_the_directors_scope(both: Both) -> None:
    everything = both.local.structures()
    for _, scope, ent in both.as_director():
        assert sorted(ent.structures(), key=lambda s: s.id) == entcore_structures(
            everything, scope
        )
        for structure in everything:
            expected = entcore_structures([structure], scope)
            assert ent.structure(structure.id) == (expected[0] if expected else None)


def test_classes(both: Both) -> None:
    for _, scope, ent in both.as_director():
        for sid in scope:
            assert sorted(ent.classes(sid), key=lambda c: c.id) == entcore_classes(
                both.local.classes(sid)
            )


@pytest.mark.parametrize("include_removed", [False, True])
def test_users_of_each_school(both: Both, include_removed: bool) -> None:
    for _, scope, ent in both.as_director():
        for sid in scope:
            everyone = both.local.users(sid, include_removed=True)
            expected = [u for u in entcore_listed(everyone) if include_removed or u.is_live]
            assert norm_users(ent.users(sid, include_removed=include_removed)) == norm_users(
                expected
            )
            for profiles in (["Relative"], ["Teacher", "Personnel"]):
                assert norm_users(ent.users(sid, profiles, include_removed)) == norm_users(
                    [u for u in expected if u.profile in profiles]
                )


def test_groups_of_each_school(both: Both) -> None:
    every_user = {u["id"]: both.local.user(u["id"]) for u in both.school.data["users"]}
    users = {uid: u for uid, u in every_user.items() if u is not None}
    for _, scope, ent in both.as_director():
        for sid in scope:
            expected = entcore_groups(both.local.groups(sid), users)
            assert norm_groups(ent.groups(sid)) == norm_groups(expected)
            for group in expected:
                found = ent.group(group.id)
                assert found is not None
                assert norm_groups([found]) == norm_groups([group])


def test_each_account_by_id_and_by_login(both: Both) -> None:
    for _, scope, ent in both.as_director():
        for record in both.school.data["users"]:
            local = both.local.user(record["id"])
            expected = norm_user(entcore_user(local, scope))
            assert norm_user(ent.user(record["id"])) == expected, record["id"]
            assert norm_user(ent.user_by_login(record["login"])) == expected, record["login"]


def test_nobody_without_the_adml_function_reads_the_directory(both: Both) -> None:
    """entcore knows no eRun: the ERUN function is kept but gives no right in the ENT, as
    for teachers and parents (isAdmin refuses with 401)."""
    directors = both.school.directors()
    others = [login for login in both.school.tokens if login not in directors]
    assert others
    for login in others:
        with pytest.raises(EntcoreAuthError) as refused:
            both.ent.directory(both.school.token(login), 0).structures()
        assert refused.value.status == 401


# --- each inherent difference, where it shows --------------------------------------------


def test_the_inherent_differences_show_on_the_demo_school() -> None:
    store = Store.in_memory()
    import_school(store, DEMO_SCHOOL)
    local = store.directory
    school = state_from_school(DEMO_SCHOOL)
    assert school.caveats == ["2 share favourite(s) not held: entcore has no admin route for them"]
    jaures, pasteur = "0590123A", "0590124B"
    with running_ent(school.state) as running:
        claire = running.directory(school.token("claire.martin"), 0)
        # No city, no circonscription.
        assert local.structure(jaures).circonscription == "Lille 1"  # type: ignore[union-attr]
        assert claire.structure(jaures).circonscription == ""  # type: ignore[union-attr]
        # Every school locally; the ADML scope on the ENT.
        assert {s.id for s in local.structures()} == {jaures, pasteur}
        assert claire.structure(pasteur) is None
        # A deleted parent: listed locally, absent from the ENT, and from its groups.
        assert "usr-p15" in {u.id for u in local.users(jaures, include_removed=True)}
        assert "usr-p15" not in {u.id for u in claire.users(jaures, include_removed=True)}
        assert claire.user("usr-p15") is None and claire.user_by_login("gerard.lenoir") is None
        ape = {g.id: g for g in claire.groups(jaures)}["grp-ape-2021"]
        local_ape = {g.id: g for g in local.groups(jaures)}["grp-ape-2021"]
        assert set(local_ape.member_ids) - set(ape.member_ids) == {"usr-t12", "usr-p15"}
        # A pre-deleted teacher: listed with its school, but its node has no structure.
        assert local.user("usr-t12").structures == (jaures,)  # type: ignore[union-attr]
        vanacker = claire.user("usr-t12")
        assert vanacker is not None and vanacker.pre_deleted == "2025-07-15"
        assert vanacker.structures == ()
        # A teacher of two schools: no home school in the list, the node gives it.
        listed = {u.id: u for u in claire.users(jaures)}
        assert listed["usr-t11"].home_structure is None
        assert claire.user("usr-t11").home_structure == pasteur  # type: ignore[union-attr]
        # Another school's teacher: out of Claire's reach on the ENT.
        assert local.user("usr-t20") is not None and claire.user("usr-t20") is None
        # A parent blocked alone: seen in the school's list, not on the account alone.
        assert local.user("usr-p12").blocked_individually  # type: ignore[union-attr]
        assert listed["usr-p12"].blocked_individually
        assert not claire.user("usr-p12").blocked_individually  # type: ignore[union-attr]
        # Share favourites: none on the ENT.
        assert local.share_favorites(jaures) and claire.share_favorites(jaures) == []
        # The eRun keeps its function name but has no right in the ENT.
        erun = running.directory(school.token("erun.lille1"), 0)
        with pytest.raises(EntcoreAuthError):
            erun.structures()
        assert claire.user("usr-erun-01").functions == ("ERUN",)  # type: ignore[union-attr]
    store.dispose()


def test_the_school_holds_the_file_as_entcore_would() -> None:
    school = state_from_school(DEMO_SCHOOL)
    state = school.state
    claire = state.users["usr-t01"]
    assert claire.functions == {"ADMIN_LOCAL": ["0590123A"]}
    assert state.tokens[school.token("claire.martin")].scope == {"userinfo", "directory", "auth"}
    assert state.structures["0590123A"].uai == "0590123A"
    assert state.users["usr-p05"].activation_code and not state.users["usr-t01"].activation_code
    assert "usr-p15" not in state.users and "gerard.lenoir" not in school.tokens
    assert "bernard.vanacker" not in school.tokens
    assert state.groups["grp-gar"].lock_delete and not state.groups["grp-ape-2021"].lock_delete
    assert {g.filter for g in state.groups.values() if g.type == "ProfileGroup"} == {
        "Teacher",
        "Relative",
        "Student",
    }
    # Exactly the file's groups: entcore's automatic ones are not added.
    assert set(state.groups) == {g["id"] for g in school.data["groups"]}


def test_a_broken_file_is_refused_by_the_projects_rules() -> None:
    with pytest.raises(SchoolFileError):
        state_from_school({"structures": [], "users": [{"id": "x"}]})


def test_the_inherent_differences_show_on_the_enriched_school() -> None:
    store = Store.in_memory()
    data = enriched_school()
    import_school(store, data)
    local = store.directory
    school = state_from_school(enriched_school())
    tilleuls, ferry = "0620555X", "0620556Y"
    groups = school.state.groups
    assert (groups["g-double"].filter, groups["g-double"].class_id) == (
        "Student",
        "c-double",
    )
    assert groups["g-cycle3"].type == "FunctionalGroup"
    assert school.state.users["dir2"].functions == {"ADMIN_LOCAL": ["0620556Y", "0620555X"]}
    assert school.state.users["csv"].activation_code
    assert "py" not in school.state.users
    # Told not blocked alone, while the other parents are not blocked: entcore's single flag
    # reads it as blocked alone.
    assert [c.split(":")[0] for c in school.caveats] == ["r-told"]
    with running_ent(school.state) as running:
        dir2 = running.directory(school.token("login.dir2"), 0)
        assert {s.id for s in dir2.structures()} == {tilleuls, ferry}
        # The class level comes from the name on the ENT.
        levels = {c.id: c.level for c in dir2.classes(tilleuls)}
        assert levels["c-double"] == "Double"
        assert {c.id: c.level for c in local.classes(tilleuls)}["c-double"] == "CE2-CM1"
        # Blocked alone: read per school on the ENT, once per account from the file locally.
        ent_ferry = {u.id: u for u in dir2.users(ferry)}
        local_ferry = {u.id: u for u in local.users(ferry)}
        assert local_ferry["r-both"].blocked_individually
        assert not ent_ferry["r-both"].blocked_individually
        ent_tilleuls = {u.id: u for u in dir2.users(tilleuls, include_removed=True)}
        local_tilleuls = {u.id: u for u in local.users(tilleuls, include_removed=True)}
        assert ent_tilleuls["r-both"].blocked_individually
        assert ent_tilleuls["r-told"].blocked_individually
        assert not local_tilleuls["r-told"].blocked_individually
        # A pre-deleted teacher's class is on its Backup node; a deleted pupil is gone.
        assert local_tilleuls["gone"].classes == ("c-cp",)
        assert ent_tilleuls["gone"].classes == ()
        assert "py" in local_tilleuls and "py" not in ent_tilleuls
        # A functional group's members: live ones only.
        cycle3 = {g.id: g for g in dir2.groups(tilleuls)}["g-cycle3"]
        assert sorted(cycle3.member_ids) == ["t1", "t2"]
        assert cycle3.type == "FunctionalGroup"
    store.dispose()


def test_a_profile_group_the_ent_cannot_derive_is_told() -> None:
    school = state_from_school(TILLEULS)
    data = school.data
    data["groups"].append(
        {
            "id": "g-some",
            "structure": "0620555X",
            "name": "Quelques",
            "type": "ProfileGroup",
            "members": ["t1", "t2"],
        }
    )
    assert [c.split(":")[0] for c in state_from_school(data).caveats] == ["g-some"]
