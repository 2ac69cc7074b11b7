"""The entcore directory's reads through the real HTTP client against the fake ENT: mapping,
requests sized for a school, the cache, and the ENT's refusals told in French."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bot.entcore.client import EntcoreAuthError
from intents.domain import Directory
from tests.fake_entcore.seed import (
    APE,
    CE2,
    CLAIRE,
    CM2,
    CP_A,
    GAR,
    JAURES,
    MARC,
    NO_DIRECTORY,
    PASTEUR,
    PASTEUR_GROUP,
    TEACHER,
)
from tests.fake_entcore.support import RunningEnt, running_ent


@pytest.fixture
def ent() -> Iterator[RunningEnt]:
    with running_ent() as running:
        yield running


def test_structures_are_the_directors_scope_and_a_uai_is_accepted(ent: RunningEnt) -> None:
    claire: Directory = ent.directory(CLAIRE)
    assert [s.id for s in claire.structures()] == [JAURES]
    assert claire.structure("0590123A") is not None
    assert claire.structure("0590123A").name == "École primaire Jean Jaurès"  # type: ignore[union-attr]
    assert claire.structure(PASTEUR) is None
    assert [s.id for s in ent.directory(MARC).structures()] == [PASTEUR]


def test_classes_with_levels_and_pupil_counts(ent: RunningEnt) -> None:
    classes = {c.id: c for c in ent.directory(CLAIRE).classes("0590123A")}
    assert set(classes) == {CM2, CP_A, CE2}
    assert (classes[CM2].pupil_count, classes[CP_A].pupil_count, classes[CE2].pupil_count) == (
        2,
        1,
        0,
    )
    assert classes[CP_A].level == "CP"
    assert classes[CM2].structure_id == JAURES


def test_accounts_are_mapped(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    users = {u.id: u for u in claire.users(JAURES)}
    assert users["u-claire"].functions == ("DIRECTOR",)
    assert users["u-claire"].classes == (CM2,)
    assert users["u-parent2"].blocked and not users["u-parent1"].blocked
    # Some parents blocked, others not: the blocked one was blocked individually.
    assert users["u-parent2"].blocked_individually
    assert not users["u-manuel-jamais"].activated and users["u-manuel-actif"].activated
    assert users["u-manuel-actif"].is_manual and users["u-aaf-invite"].source == "AAF1D"
    assert set(users["u-parent3"].structures) == {JAURES, PASTEUR}
    assert {u.id for u in claire.users(JAURES, profiles=["Relative"])} == {
        "u-parent1",
        "u-parent2",
        "u-parent3",
    }


def test_one_account_with_its_administrative_attachment(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    substitute = claire.user("u-remplacant")
    assert substitute is not None and substitute.home_structure == PASTEUR
    leroy = claire.user("u-leroy")
    assert leroy is not None and leroy.home_structure == JAURES and leroy.classes == (CP_A,)
    assert claire.user_by_login("nathalie.leroy") == leroy
    # The school's list has no administrative attachment: one school is taken as home, two
    # schools as unknown (the single-account read tells).
    listed = {u.id: u for u in claire.users(JAURES)}
    assert listed["u-leroy"].home_structure == JAURES
    assert listed["u-remplacant"].home_structure is None
    # Unknown, or out of the director's reach: entcore's filter answers 401, read as absent.
    assert claire.user("u-inconnu") is None
    assert claire.user("u-eleve-p") is None


def test_pre_deleted_accounts_only_when_asked(ent: RunningEnt) -> None:
    ent.state.pre_delete(ent.state.users["u-manuel-actif"])
    claire = ent.directory(CLAIRE)
    assert "u-manuel-actif" not in {u.id for u in claire.users(JAURES)}
    gone = {u.id: u for u in claire.users(JAURES, include_removed=True)}["u-manuel-actif"]
    assert gone.pre_deleted is not None and not gone.is_live
    assert claire.user("u-manuel-actif").pre_deleted == gone.pre_deleted  # type: ignore[union-attr]


def test_groups_with_types_and_members(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    groups = {g.id: g for g in claire.groups(JAURES)}
    assert groups[GAR].type == "ManualGroup" and groups[GAR].member_ids == ("u-claire",)
    assert set(groups[APE].member_ids) == {"u-claire", "u-parent1"}
    teachers = groups[f"pg-{JAURES}-Teacher"]
    assert teachers.type == "ProfileGroup"
    assert set(teachers.member_ids) == {
        "u-claire",
        "u-leroy",
        "u-petit",
        "u-remplacant",
        "u-parti",
    }
    assert set(groups[f"pg-{CM2}-Student"].member_ids) == {"u-eleve1", "u-eleve2"}
    assert claire.group_locked(GAR) and not claire.group_locked(APE)
    assert claire.group(APE) == groups[APE]
    assert claire.group(PASTEUR_GROUP) is None
    assert claire.share_favorites(JAURES) == []


def test_a_whole_school_in_a_handful_of_requests(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    claire.users(JAURES)
    claire.classes(JAURES)
    claire.groups(JAURES)
    claire.users(JAURES, profiles=["Teacher"])
    routes = [c.route for c in ent.fake.calls]
    assert "GET /directory/user/{userId}" not in routes
    assert routes.count("GET /directory/structure/{id}/users") == 1
    # Structures, classes, users, groups, and the members of the 4 manual or functional
    # groups: profile groups' members come from the user list.
    assert len(routes) == 4 + 4, routes


def test_reads_are_cached_then_read_again(ent: RunningEnt) -> None:
    now = [0.0]
    from bot.entcore.directory import EntcoreDirectory

    claire = EntcoreDirectory(ent.client, CLAIRE, cache_seconds=10, clock=lambda: now[0])
    claire.users(JAURES)
    claire.users(JAURES)
    assert len(ent.fake.calls_to("GET /directory/structure/{id}/users")) == 1
    now[0] = 11.0
    claire.users(JAURES)
    assert len(ent.fake.calls_to("GET /directory/structure/{id}/users")) == 2
    # The assistant's own change clears the cache: the next read asks the ENT.
    claire.attach_teacher_to_class("u-petit", CE2)
    assert CE2 in {u.id: u for u in claire.users(JAURES)}["u-petit"].classes


def test_a_director_without_the_school_is_refused_in_french(ent: RunningEnt) -> None:
    marc = ent.directory(MARC)
    with pytest.raises(EntcoreAuthError) as refused:
        marc.users(JAURES)
    assert refused.value.status == 401
    assert "n'administre pas cette école" in refused.value.message
    with pytest.raises(EntcoreAuthError):
        marc.detach_teacher_from_structure("u-petit", JAURES)
    assert "u-petit" in {u.id for u in ent.directory(CLAIRE).users(JAURES)}
    with pytest.raises(EntcoreAuthError):
        marc.set_blocked(JAURES, ["Relative"], True)
    assert not ent.state.users["u-parent1"].blocked


def test_a_teacher_and_bad_tokens_are_refused(ent: RunningEnt) -> None:
    with pytest.raises(EntcoreAuthError) as teacher:
        ent.directory(TEACHER).structures()
    assert teacher.value.status == 401
    for token in ("tok-inconnu", NO_DIRECTORY):
        with pytest.raises(EntcoreAuthError) as bad:
            ent.directory(token).users(JAURES)
        # entcore sends an unknown token, or one without the `directory` scope, to its login
        # page; the client never follows it.
        assert bad.value.status == 302
        assert "Reconnectez-vous" in bad.value.message


def test_the_fake_answers_a_bad_token_with_its_login_page(ent: RunningEnt) -> None:
    response = httpx.get(
        f"{ent.url}/directory/structure/admin/list", headers={"Authorization": "Bearer x"}
    )
    assert response.status_code == 302 and "/auth/login" in response.headers["location"]
