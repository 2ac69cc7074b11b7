"""Every change of the entcore directory, end to end through the real HTTP client against the
fake ENT: the routes and bodies sent, what entcore then holds, the ENT's refusals and its
silent no-ops detected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from bot.entcore.client import (
    EntcoreAuthError,
    EntcoreError,
    EntcoreNoOp,
    EntcoreNotFound,
    EntcoreRefused,
)
from intents.domain import NotFound
from tests.fake_entcore.seed import (
    APE,
    CE2,
    CHORALE,
    CLAIRE,
    CLAIRE_AUTH,
    FUNCTIONAL,
    GAR,
    JAURES,
    MARC,
    PASTEUR,
    PASTEUR_GROUP,
)
from tests.fake_entcore.support import RunningEnt, running_ent

TODAY = date(2026, 9, 1)
BLOCK = "PUT /directory/structure/{id}/profile/block"


@pytest.fixture
def ent() -> Iterator[RunningEnt]:
    with running_ent() as running:
        yield running


def test_block_one_call_per_profile_and_counts_from_reads(ent: RunningEnt) -> None:
    result = ent.directory(CLAIRE).set_blocked("0590123A", ["Relative", "Student"], True)
    assert [c.body for c in ent.fake.calls_to(BLOCK)] == [
        {"profile": "Relative", "block": True},
        {"profile": "Student", "block": True},
    ]
    assert {c.path for c in ent.fake.calls_to(BLOCK)} == {
        f"/directory/structure/{JAURES}/profile/block"
    }
    assert set(result.changed) == {"u-parent1", "u-parent3", "u-eleve1", "u-eleve2", "u-eleve3"}
    assert result.unchanged == ("u-parent2",)
    # `blocked` belongs to the account: the parent is blocked in the other school too.
    marc_view = {u.id: u for u in ent.directory(MARC).users(PASTEUR)}
    assert marc_view["u-parent3"].blocked
    assert not marc_view["u-eleve-p"].blocked


def test_unblock_keeps_the_chosen_accounts_blocked_one_by_one(ent: RunningEnt) -> None:
    result = ent.directory(CLAIRE_AUTH).set_blocked(
        JAURES, ["Relative"], False, keep=["u-parent2"]
    )
    assert result.kept == ("u-parent2",) and result.changed == ()
    assert ent.state.users["u-parent2"].blocked
    assert [c.body for c in ent.fake.calls_to("PUT /auth/block/{userId}")] == [{"block": True}]


def test_unblock_without_the_auth_scope_says_what_to_do(ent: RunningEnt) -> None:
    ent.state.users["u-parent1"].blocked = True
    with pytest.raises(EntcoreError) as lost:
        ent.directory(CLAIRE).set_blocked(JAURES, ["Relative"], False, keep=["u-parent2"])
    assert "Marc Lefebvre" in lost.value.message and "un par un" in lost.value.message
    # entcore's rule: unblocking the profile lifted the individual block too.
    assert not ent.state.users["u-parent2"].blocked and not ent.state.users["u-parent1"].blocked


def test_a_block_that_changed_nobody_is_detected(ent: RunningEnt, monkeypatch: Any) -> None:
    from tests.fake_entcore import routes

    monkeypatch.setattr(routes, "block_profile", lambda ctx: routes.no_content())
    with running_ent() as silent, pytest.raises(EntcoreNoOp) as noop:
        silent.directory(CLAIRE).set_blocked(JAURES, ["Relative"], True)
    assert "n'a pas bloqué" in noop.value.message and "Sophie Durand" in noop.value.message


def test_attach_then_undo(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    claire.attach_teacher_to_class("u-petit", CE2)
    assert [c.path for c in ent.fake.calls_to("PUT /directory/class/{classId}/link/{userId}")] == [
        f"/directory/class/{CE2}/link/u-petit"
    ]
    assert CE2 in claire.user("u-petit").classes  # type: ignore[union-attr]
    claire.unlink_from_class("u-petit", CE2)
    assert ent.state.users["u-petit"].classes == []
    # Undoing twice: nothing left to undo (entcore's 404), not an error.
    claire.unlink_from_class("u-petit", CE2)


def test_attach_nothing_linked_is_told(ent: RunningEnt) -> None:
    with pytest.raises(EntcoreNotFound) as nothing:
        ent.directory(CLAIRE).attach_teacher_to_class("u-inconnu", CE2)
    assert "n'a rattaché personne" in nothing.value.message


def test_detach_then_reattach(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    claire.detach_teacher_from_structure("u-parti", JAURES)
    assert "u-parti" not in {u.id for u in claire.users(JAURES)}
    assert ent.state.users["u-parti"].structures == [PASTEUR]
    assert CE2 not in ent.state.users["u-parti"].classes
    claire.reattach_to_structure("u-parti", JAURES)
    assert "u-parti" in {u.id for u in claire.users(JAURES)}


def test_detach_leaves_the_schools_groups(ent: RunningEnt) -> None:
    ent.state.groups[APE].members.append("u-petit")
    ent.state.groups[GAR].members.append("u-petit")
    ent.directory(CLAIRE).detach_teacher_from_structure("u-petit", JAURES)
    assert "u-petit" not in ent.state.groups[APE].members
    assert "u-petit" not in ent.state.groups[GAR].members


def test_delete_a_manual_group(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    claire.delete_group(CHORALE, TODAY)
    assert CHORALE not in ent.state.groups
    assert [(g.id, g.name, g.removed_on) for g in claire.removed_groups(JAURES)] == [
        (CHORALE, "Chorale", "2026-09-01")
    ]
    assert claire.group(CHORALE) is None


@pytest.mark.parametrize("group_id", [GAR, f"pg-{JAURES}-Teacher", FUNCTIONAL])
def test_groups_entcore_would_not_delete_are_refused_before_sending(
    ent: RunningEnt, group_id: str
) -> None:
    with pytest.raises(EntcoreRefused) as refused:
        ent.directory(CLAIRE).delete_group(group_id, TODAY)
    assert "Rien n'a été modifié" in refused.value.message
    assert ent.fake.calls_to("DELETE /directory/group/{groupId}") == []
    assert group_id in ent.state.groups


def test_a_group_still_there_after_delete_is_an_error(ent: RunningEnt, monkeypatch: Any) -> None:
    # An ENT whose list does not show lockDelete: the DELETE answers 204 and does nothing.
    ent.state.groups[CHORALE].lock_delete = True
    real_row = ent.state.group_row
    monkeypatch.setattr(ent.state, "group_row", lambda g: {**real_row(g), "lockDelete": None})
    claire = ent.directory(CLAIRE)
    with pytest.raises(EntcoreNoOp) as noop:
        claire.delete_group(CHORALE, TODAY)
    assert "existe toujours" in noop.value.message
    assert len(ent.fake.calls_to("DELETE /directory/group/{groupId}")) == 1
    assert claire.removed_groups(JAURES) == []


def test_add_members_of_the_school(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    added = claire.add_group_members(APE, ["u-leroy", "u-claire", "u-petit"])
    assert added == ("u-leroy", "u-petit")
    [call] = ent.fake.calls_to("PUT /directory/group/{groupId}/users/add")
    assert call.body == {"userIds": ["u-leroy", "u-petit"]}
    assert set(claire.group(APE).member_ids) >= {"u-leroy", "u-petit"}  # type: ignore[union-attr]
    assert claire.add_group_members(APE, ["u-leroy"]) == ()
    assert claire.add_group_members(FUNCTIONAL, ["u-leroy"]) == ("u-leroy",)


def test_add_members_checks_the_school_and_the_group_type(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    with pytest.raises(EntcoreRefused):
        claire.add_group_members(APE, ["u-marc"])  # a teacher of the other school
    with pytest.raises(EntcoreRefused):
        claire.add_group_members(f"pg-{JAURES}-Teacher", ["u-leroy"])
    with pytest.raises(NotFound):
        claire.add_group_members(PASTEUR_GROUP, ["u-leroy"])
    with pytest.raises(EntcoreRefused):
        claire.add_group_members(APE, ["u-leroy"], structure_id=PASTEUR)
    assert ent.fake.calls_to("PUT /directory/group/{groupId}/users/add") == []


def test_members_silently_not_added_are_detected(ent: RunningEnt, monkeypatch: Any) -> None:
    # The list calls it a manual group; entcore's add ignores it (another type).
    ent.state.groups[CHORALE].type = "CommunityGroup"
    real_row = ent.state.group_row
    monkeypatch.setattr(ent.state, "group_row", lambda g: {**real_row(g), "type": "ManualGroup"})
    with pytest.raises(EntcoreNoOp) as noop:
        ent.directory(CLAIRE).add_group_members(CHORALE, ["u-leroy"])
    assert "Nathalie Leroy" in noop.value.message


def test_create_a_manual_group(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    group = claire.create_group("0590123A", "Chorale 2026-2027", "ManualGroup")
    [call] = ent.fake.calls_to("POST /directory/group")
    assert call.body == {"name": "Chorale 2026-2027", "structureId": JAURES}
    assert group.structure_id == JAURES and group.type == "ManualGroup"
    assert claire.group(group.id) == group
    with pytest.raises(EntcoreRefused):
        claire.create_group(JAURES, "Autre", "FunctionalGroup")


def test_remove_a_never_activated_account_for_good(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    assert claire.remove_manual_account("u-manuel-jamais", TODAY) == "deleted"
    [call] = ent.fake.calls_to("DELETE /directory/user")
    assert call.query == {"userId": ["u-manuel-jamais"]}
    assert "u-manuel-jamais" not in ent.state.users
    assert "u-manuel-jamais" not in {u.id for u in claire.users(JAURES, include_removed=True)}


def test_pre_delete_an_activated_account_then_restore_it(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    assert claire.remove_manual_account("u-manuel-actif", TODAY) == "pre_deleted"
    assert claire.user("u-manuel-actif").pre_deleted  # type: ignore[union-attr]
    claire.restore_user("u-manuel-actif")
    [call] = ent.fake.calls_to("PUT /directory/restore/user")
    assert call.query == {"userId": ["u-manuel-actif"]}
    assert "u-manuel-actif" in {u.id for u in claire.users(JAURES)}


def test_restore_after_a_deletion_for_good_is_told(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    claire.remove_manual_account("u-manuel-jamais", TODAY)
    with pytest.raises(EntcoreError) as gone:
        claire.restore_user("u-manuel-jamais")
    assert "définitivement" in gone.value.message


def test_an_academic_account_is_not_sent_for_deletion(ent: RunningEnt) -> None:
    with pytest.raises(EntcoreRefused) as refused:
        ent.directory(CLAIRE).remove_manual_account("u-aaf-invite", TODAY)
    assert "AAF1D" in refused.value.message
    assert ent.fake.calls_to("DELETE /directory/user") == []


def test_the_fake_fails_the_whole_deletion_for_one_academic_account(ent: RunningEnt) -> None:
    response = httpx.delete(
        f"{ent.url}/directory/user",
        params=[("userId", "u-manuel-actif"), ("userId", "u-aaf-invite")],
        headers={"Authorization": f"Bearer {CLAIRE}"},
    )
    assert response.status_code == 400 and response.json() == {"error": "unauthorized.user"}
    assert ent.state.users["u-manuel-actif"].delete_date is None


def test_another_schools_director_cannot_change_this_school(ent: RunningEnt) -> None:
    marc = ent.directory(MARC)
    for change in (
        lambda: marc.attach_teacher_to_class("u-petit", CE2),
        lambda: marc.reattach_to_structure("u-petit", JAURES),
    ):
        with pytest.raises(EntcoreAuthError) as refused:
            change()
        assert refused.value.status == 401 and "ENT" in refused.value.message
    assert ent.state.users["u-petit"].classes == []
    ent.state.pre_delete(ent.state.users["u-manuel-actif"])
    with pytest.raises(EntcoreNotFound) as out_of_reach:
        marc.restore_user("u-manuel-actif")
    assert "autre école" in out_of_reach.value.message
    assert ent.state.users["u-manuel-actif"].delete_date is not None
