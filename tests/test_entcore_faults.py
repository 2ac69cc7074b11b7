"""The ENT failing: reads retried (bounded, short pauses) on 500s and time-outs then
reported in French; a change answered with a 500 or a time-out is never sent again, but
re-read and verified."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from bot.entcore.client import (
    EntcoreClient,
    EntcoreError,
    EntcoreForbidden,
    EntcoreUnavailable,
)
from bot.entcore.directory import EntcoreDirectory
from tests.fake_entcore.seed import APE, CE2, CHORALE, CLAIRE, JAURES
from tests.fake_entcore.support import RunningEnt, running_ent
from tests.web_support import free_port

USERS = "GET /directory/structure/{id}/users"
BLOCK = "PUT /directory/structure/{id}/profile/block"
UNLINK = "DELETE /directory/structure/{structureId}/unlink/{userId}"
LINK_CLASS = "PUT /directory/class/{classId}/link/{userId}"
DELETE_GROUP = "DELETE /directory/group/{groupId}"
ADD_MEMBERS = "PUT /directory/group/{groupId}/users/add"
CREATE_GROUP = "POST /directory/group"
DELETE_USER = "DELETE /directory/user"
TODAY = date(2026, 9, 1)


@pytest.fixture
def ent() -> Iterator[RunningEnt]:
    with running_ent() as running:
        yield running


def test_a_read_is_retried_on_500s(ent: RunningEnt) -> None:
    ent.fake.fail(USERS, times=2)
    users = ent.directory(CLAIRE).users(JAURES)
    assert "u-leroy" in {u.id for u in users}
    assert len(ent.fake.calls_to(USERS)) == 3
    assert ent.pauses == [0.01, 0.02]


def test_a_read_failing_every_time_is_reported(ent: RunningEnt) -> None:
    ent.fake.fail(USERS, times=10)
    with pytest.raises(EntcoreUnavailable) as down:
        ent.directory(CLAIRE).users(JAURES)
    assert len(ent.fake.calls_to(USERS)) == 3
    assert "erreur (500)" in down.value.message and "3 essais" in down.value.message


def test_a_read_is_retried_after_a_time_out(ent: RunningEnt) -> None:
    ent.fake.hang(USERS, times=1)
    assert ent.directory(CLAIRE).users(JAURES)
    assert len(ent.fake.calls_to(USERS)) == 2


def test_reads_timing_out_every_time_are_reported(ent: RunningEnt) -> None:
    ent.fake.hang(USERS, times=3)
    with pytest.raises(EntcoreUnavailable) as slow:
        ent.directory(CLAIRE).users(JAURES)
    assert "n'a pas répondu à temps" in slow.value.message
    assert len(ent.fake.calls_to(USERS)) == 3


def test_an_unreachable_ent_is_reported() -> None:
    pauses: list[float] = []
    client = EntcoreClient(f"http://127.0.0.1:{free_port()}", sleep=pauses.append)
    with client, pytest.raises(EntcoreUnavailable) as unreachable:
        EntcoreDirectory(client, CLAIRE).structures()
    assert "injoignable" in unreachable.value.message and len(pauses) == 2


def test_a_block_answered_500_but_done_is_verified_not_resent(ent: RunningEnt) -> None:
    ent.fake.fail(BLOCK, apply=True)
    result = ent.directory(CLAIRE).set_blocked(JAURES, ["Relative"], True)
    assert set(result.changed) == {"u-parent1", "u-parent3"}
    assert len(ent.fake.calls_to(BLOCK)) == 1


def test_a_block_answered_500_and_not_done_is_an_error_not_resent(ent: RunningEnt) -> None:
    ent.fake.fail(BLOCK)
    with pytest.raises(EntcoreError) as failed:
        ent.directory(CLAIRE).set_blocked(JAURES, ["Relative"], True)
    assert "n'a pas bloqué" in failed.value.message
    assert len(ent.fake.calls_to(BLOCK)) == 1
    assert not ent.state.users["u-parent1"].blocked


def test_a_block_refused_by_the_ent_is_told_with_its_reason(ent: RunningEnt) -> None:
    ent.fake.fail(BLOCK, status=403)
    with pytest.raises(EntcoreForbidden) as refused:
        ent.directory(CLAIRE).set_blocked(JAURES, ["Relative", "Student"], True)
    assert refused.value.status == 403 and "accès interdit" in refused.value.message
    # The second profile was still sent, and done: said too.
    assert "3 compte(s) ont tout de même changé" in refused.value.message
    assert len(ent.fake.calls_to(BLOCK)) == 2


def test_a_detach_timing_out_but_done_is_verified(ent: RunningEnt) -> None:
    ent.fake.hang(UNLINK, apply=True)
    ent.directory(CLAIRE).detach_teacher_from_structure("u-petit", JAURES)
    assert len(ent.fake.calls_to(UNLINK)) == 1
    assert JAURES not in ent.state.users["u-petit"].structures


def test_a_detach_timing_out_and_not_done_is_an_error(ent: RunningEnt) -> None:
    ent.fake.hang(UNLINK)
    with pytest.raises(EntcoreError) as failed:
        ent.directory(CLAIRE).detach_teacher_from_structure("u-petit", JAURES)
    assert "ce n'est pas fait" in failed.value.message
    assert len(ent.fake.calls_to(UNLINK)) == 1


def test_an_attach_answered_500_is_checked(ent: RunningEnt) -> None:
    ent.fake.fail(LINK_CLASS, apply=True)
    ent.directory(CLAIRE).attach_teacher_to_class("u-petit", CE2)
    ent.fake.fail(LINK_CLASS)
    with pytest.raises(EntcoreError):
        ent.directory(CLAIRE).attach_teacher_to_class("u-leroy", CE2)
    assert len(ent.fake.calls_to(LINK_CLASS)) == 2
    assert CE2 not in ent.state.users["u-leroy"].classes


def test_a_group_deletion_answered_500(ent: RunningEnt) -> None:
    claire = ent.directory(CLAIRE)
    ent.fake.fail(DELETE_GROUP)
    with pytest.raises(EntcoreError):
        claire.delete_group(CHORALE, TODAY)
    assert CHORALE in ent.state.groups and claire.removed_groups(JAURES) == []
    ent.fake.fail(DELETE_GROUP, apply=True)
    claire.delete_group(CHORALE, TODAY)
    assert len(ent.fake.calls_to(DELETE_GROUP)) == 2
    assert [g.id for g in claire.removed_groups(JAURES)] == [CHORALE]


def test_members_added_despite_a_500(ent: RunningEnt) -> None:
    ent.fake.fail(ADD_MEMBERS, apply=True)
    assert ent.directory(CLAIRE).add_group_members(APE, ["u-leroy"]) == ("u-leroy",)
    assert len(ent.fake.calls_to(ADD_MEMBERS)) == 1


def test_a_group_created_despite_a_time_out_is_found_by_name(ent: RunningEnt) -> None:
    ent.fake.hang(CREATE_GROUP, apply=True)
    group = ent.directory(CLAIRE).create_group(JAURES, "Chorale 2026-2027", "ManualGroup")
    assert group.name == "Chorale 2026-2027" and group.id in ent.state.groups
    assert len(ent.fake.calls_to(CREATE_GROUP)) == 1


def test_an_account_deletion_answered_500(ent: RunningEnt) -> None:
    ent.fake.fail(DELETE_USER, apply=True)
    claire = ent.directory(CLAIRE)
    assert claire.remove_manual_account("u-manuel-jamais", TODAY) == "deleted"
    ent.fake.fail(DELETE_USER)
    with pytest.raises(EntcoreError) as failed:
        claire.remove_manual_account("u-manuel-actif", TODAY)
    assert "ce n'est pas fait" in failed.value.message
    assert len(ent.fake.calls_to(DELETE_USER)) == 2
    assert ent.state.users["u-manuel-actif"].delete_date is None


def test_changes_are_never_retried_by_the_client(ent: RunningEnt) -> None:
    ent.fake.fail(ADD_MEMBERS, times=5)
    response_count = len(ent.fake.calls_to(ADD_MEMBERS))
    with pytest.raises(EntcoreError):
        ent.directory(CLAIRE).add_group_members(APE, ["u-leroy"])
    assert len(ent.fake.calls_to(ADD_MEMBERS)) == response_count + 1
    assert ent.pauses == []
    # The fake's fault is still armed for the next calls: nothing else was sent.
    assert ent.fake.faults[ADD_MEMBERS][0].times == 4


def test_the_client_does_not_follow_the_login_redirect(ent: RunningEnt) -> None:
    response = httpx.get(f"{ent.url}/directory/structure/admin/list")
    assert response.status_code == 302
