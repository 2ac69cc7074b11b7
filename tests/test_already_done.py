"""« Already done » with the date the directory or the audit log knows, including the cases
the stories cannot reach: a change made behind the assistant's back, between the proposal and
the confirmation, or undone since."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.app import DEMO_SCHOOL
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from tests.support import DEMO, DIRECTOR

EARLIER = datetime(2026, 11, 12, 15, 30, tzinfo=UTC)
LATER = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_a_group_deleted_without_a_date_takes_it_from_the_audit_log(talk, store: Store) -> None:
    store.directory.delete_group("grp-chorale-2025")  # no day given: the directory cannot say
    store.audit.record(
        "console:claire.martin",
        "action.delete_group",
        ["grp-chorale-2025"],
        "done",
        "",
        DEMO,
        EARLIER,
    )
    seen = talk(DIRECTOR).say("supprime le groupe chorale")
    assert "Le groupe « Chorale 2025-2026 » a déjà été supprimé le 12/11/2026" in seen.text


def test_a_group_deleted_outside_the_assistant_has_no_made_up_date(talk, store: Store) -> None:
    store.directory.delete_group("grp-chorale-2025")
    seen = talk(DIRECTOR).say("supprime le groupe chorale")
    assert "Le groupe « Chorale 2025-2026 » a déjà été supprimé : rien à faire." in seen.text


def test_a_group_deleted_between_proposal_and_confirmation(talk, store: Store) -> None:
    director = talk(DIRECTOR)
    director.say("supprime le groupe chorale")
    store.directory.delete_group("grp-chorale-2025", EARLIER.date())
    seen = director.press("Confirmer")
    assert "a déjà été supprimé le 12/11/2026" in seen.text
    entry = store.audit.entries()[-1]
    assert (entry.action, entry.outcome, entry.detail) == (
        "action.delete_group",
        "refused",
        "déjà supprimé",
    )


def test_a_teacher_detached_between_proposal_and_confirmation(talk, store: Store) -> None:
    director = talk(DIRECTOR)
    director.say("détache hugo lambert")
    store.directory.detach_teacher_from_structure("usr-t11", DEMO)
    seen = director.press("Confirmer")
    assert "Hugo Lambert ne fait déjà plus partie de l'école" in seen.text
    assert "détachement a été fait" not in seen.text  # the audit log never saw it


def test_a_teacher_who_left_without_the_assistant_is_not_said_detached(talk, store: Store) -> None:
    store.directory.detach_teacher_from_structure("usr-t11", DEMO)
    seen = talk(DIRECTOR).say("détache hugo lambert")
    assert "déjà plus partie" not in seen.text
    assert "ne fait pas (ou plus) partie" in seen.text


def test_a_block_undone_since_gives_no_date(talk, store: Store) -> None:
    # The audit log says: blocked on the 12th, unblocked on the 20th; the directory, reloaded
    # since, has them blocked. « depuis le 12/11 » would be wrong: no date at all.
    ids = [u.id for u in store.directory.users(DEMO, profiles=["Relative"])]
    store.audit.record("telegram:1", "action.block", ids, "done", "", DEMO, EARLIER)
    store.audit.record("telegram:1", "action.unblock", ids, "done", "", DEMO, LATER)
    store.directory.set_blocked(DEMO, ["Relative"], True)
    seen = talk(DIRECTOR).say("bloque les parents")
    assert "sont déjà bloqués." in seen.text and "depuis" not in seen.text


def test_last_done_keeps_the_latest_date_per_target_and_school(store: Store) -> None:
    audit = store.audit
    audit.record("telegram:1", "action.block", ["a", "b"], "done", "", DEMO, EARLIER)
    audit.record("telegram:1", "action.block", ["b"], "done", "", DEMO, LATER)
    audit.record("telegram:1", "action.block", ["c"], "cancelled", "", DEMO, LATER)
    audit.record("telegram:1", "action.block", ["d"], "done", "", "0590124B", LATER)
    assert audit.last_done(DEMO, "action.block") == {"a": EARLIER, "b": LATER}


def test_removed_groups_are_remembered_per_school_until_the_next_import(store: Store) -> None:
    directory = store.directory
    directory.delete_group("grp-ape-2021", EARLIER.date())
    directory.delete_group("grp-chorale-2025", LATER.date())
    removed = directory.removed_groups(DEMO)
    assert [(g.name, g.removed_on) for g in removed] == [
        ("Chorale 2025-2026", "2026-11-20"),
        ("APE 2021-2022", "2026-11-12"),
    ]
    assert directory.removed_groups("0590124B") == []
    import_school(store, DEMO_SCHOOL)  # a new directory: its groups are all there again
    assert directory.removed_groups(DEMO) == []
