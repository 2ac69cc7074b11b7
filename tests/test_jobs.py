"""Scheduled jobs end to end: scheduled by a real conversation, run by the job runner with a
fake clock, and what the user then sees (a message, an edited message)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from bot.app import DEMO_SCHOOL
from bot.core.assistant import Assistant
from bot.core.job_runner import JobRunner
from bot.core.jobs import PARIS, EditMessage, SendMessage
from bot.core.messages import ActionOutcome
from bot.settings import Settings
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from intents.kb import html_to_text
from tests.support import (
    DEMO,
    DIRECTOR,
    PARENT,
    Clock,
    Conversation,
    Seen,
    shared_kb_and_matcher,
)

# A summer morning before the rentrée (Paris is UTC+2).
AUGUST = datetime(2026, 8, 20, 7, 0, tzinfo=UTC)


@pytest.fixture
def runner(assistant: Assistant, clock: Clock) -> JobRunner:
    return JobRunner(assistant.engine, clock, worker="test")


def _texts(deliveries: list) -> list[str]:  # type: ignore[type-arg]
    return [html_to_text(d.reply.text) for d in deliveries if isinstance(d, SendMessage)]


def _reminders(store: Store) -> list:  # type: ignore[type-arg]
    """The pending jobs about people (not the nightly purge every runner schedules)."""
    return [j for j in store.jobs.jobs(status="pending") if j.kind != "maintenance.purge"]


def _confirmed_block(director: Conversation) -> Seen:
    director.say("bloque les parents")
    done = director.press("Confirmer")
    assert "C'est fait" in done.text
    return done


# -- confirmation expiry ---------------------------------------------------------------------


def test_an_unanswered_confirmation_expires_and_loses_its_buttons(
    talk, store: Store, clock: Clock, runner: JobRunner
) -> None:
    director = talk(DIRECTOR)
    shown = director.say("bloque les parents")
    assert "Confirmer" in shown.buttons
    ref = f"{director.key}#{director.messages_sent}"
    clock.advance(minutes=9)
    assert runner.run_due() == []  # not yet
    clock.advance(minutes=2)
    deliveries = runner.run_due()
    assert len(deliveries) == 1 and isinstance(deliveries[0], EditMessage)
    assert deliveries[0].ref == ref
    assert "expiré sans confirmation" in html_to_text(deliveries[0].text or "")
    assert store.audit.entries()[-1].outcome == "expired"
    assert runner.run_due() == []  # once
    late = director.press("Confirmer")
    assert "n'est plus en attente" in late.text
    blocked = [u for u in store.directory.users("0590123A", profiles=["Relative"]) if u.blocked]
    assert not [u for u in blocked if not u.blocked_individually]


def test_a_confirmed_change_is_not_expired_later(
    talk, store: Store, clock: Clock, runner: JobRunner
) -> None:
    director = talk(DIRECTOR)
    _confirmed_block(director)
    clock.advance(minutes=11)
    assert runner.run_due() == []
    assert [e.outcome for e in store.audit.entries()][-1] == "done"


# -- the unblock reminder --------------------------------------------------------------------


def test_the_reminder_offered_after_a_block_comes_back_with_an_unblock_button(
    talk, store: Store, clock: Clock, runner: JobRunner
) -> None:
    clock.now = AUGUST
    director = talk(DIRECTOR)
    done = _confirmed_block(director)
    assert "Me le rappeler le 4 septembre" in done.buttons
    noted = director.press("Me le rappeler le 4 septembre")
    assert "le 4 septembre à 8 h" in noted.text
    clock.now = datetime(2026, 9, 4, 5, 59, tzinfo=UTC)  # 7:59 in Paris
    assert runner.run_due() == []
    clock.advance(minutes=1)
    deliveries = runner.run_due()
    assert len(deliveries) == 1
    assert "pensez à débloquer les parents" in _texts(deliveries)[0]
    button = deliveries[0].reply.buttons[0]  # type: ignore[union-attr]
    assert button.label == "Débloquer les parents"
    proposal = director.press_id(button.id)
    assert "Je vais débloquer 15 comptes" in proposal.text
    done = director.press("Tout débloquer")
    assert "C'est fait" in done.text and "débloqué" in done.text


def test_a_typed_reminder_is_parsed_in_french(talk, clock: Clock, store: Store) -> None:
    clock.now = AUGUST
    director = talk(DIRECTOR)
    noted = director.say("rappelle-moi de débloquer les parents le 4 septembre")
    assert "le 4 septembre à 8 h" in noted.text
    jobs = store.jobs.jobs(status="pending")
    assert [j.kind for j in jobs] == ["reminder.unblock"]
    assert jobs[0].due_at == datetime(2026, 9, 4, 6, 0, tzinfo=UTC)
    moved = director.say("rappelez-moi de débloquer les parents le 07/09")
    assert "le 7 septembre" in moved.text
    assert [j.due_at.day for j in store.jobs.jobs(status="pending")] == [7]  # moved, not doubled


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("rappelle-moi de débloquer les parents le 31 février", "pas compris la date"),
        ("rappelle-moi de débloquer les parents un de ces jours", "pas compris la date"),
        ("rappelle-moi de débloquer les parents le 4 septembre 2025", "déjà passé"),
    ],
)
def test_a_bad_reminder_date_is_explained_and_schedules_nothing(
    talk, clock: Clock, store: Store, text: str, said: str
) -> None:
    clock.now = AUGUST
    answer = talk(DIRECTOR).say(text)
    assert said in answer.text and "Aucun rappel" in answer.text
    assert store.jobs.jobs() == []


def test_a_parent_cannot_schedule_a_reminder(talk, clock: Clock, store: Store) -> None:
    clock.now = AUGUST
    answer = talk(PARENT).say("rappelle-moi de débloquer les parents le 4 septembre")
    assert "réservés à la direction" in answer.text
    assert store.jobs.jobs() == []


def test_a_reminder_to_someone_who_lost_the_rights(
    assistant: Assistant, store: Store, clock: Clock, runner: JobRunner
) -> None:
    clock.now = AUGUST
    key = "telegram:4242"
    store.accounts.redeem(key, store.accounts.invite(DIRECTOR, clock.now), clock.now)
    director = Conversation(assistant, None, key=key)
    director.say("rappelle-moi de débloquer les parents le 4 septembre")
    clock.now = datetime(2026, 9, 4, 6, 0, tzinfo=UTC)
    deliveries = runner.run_due()
    button = deliveries[0].reply.buttons[0]  # type: ignore[union-attr]
    store.accounts.unlink(key)  # the link is revoked after the reminder went out
    denied = director.press_id(button.id)
    if "Confirmer" in denied.buttons:  # identities are cached a few seconds; not executions
        denied = director.press("Confirmer")
        assert "plus les droits" in denied.text
    else:
        assert "Seule la direction" in denied.text
    assert store.audit.entries()[-1].outcome == "refused"
    # And a reminder due to an unlinked speaker sends nothing at all.
    director.say("/connexion " + store.accounts.invite(DIRECTOR, clock.now))
    director.say("rappelle-moi de débloquer les parents le 10 septembre")
    store.accounts.unlink(key)
    clock.now = datetime(2026, 9, 10, 6, 0, tzinfo=UTC)
    assert runner.run_due() == []


# -- the GAR check the next day --------------------------------------------------------------


def test_the_gar_check_comes_the_next_day_at_nine(
    talk, store: Store, clock: Clock, runner: JobRunner
) -> None:
    clock.now = AUGUST
    director = talk(DIRECTOR)
    director.say("rends tous les enseignants responsables d'affectation GAR")
    done = director.press("Confirmer")
    assert "Demain à 9 h" in done.text
    clock.now = datetime(2026, 8, 21, 6, 59, tzinfo=UTC)  # 8:59 in Paris
    assert runner.run_due() == []
    clock.advance(minutes=1)
    texts = _texts(runner.run_due())
    assert len(texts) == 1 and "tous les enseignants de l'école sont bien" in texts[0]


def test_the_gar_check_names_the_missing_teachers_and_offers_to_add_them(
    talk, store: Store, clock: Clock, runner: JobRunner
) -> None:
    clock.now = AUGUST
    director = talk(DIRECTOR)
    director.say("rends tous les enseignants responsables d'affectation GAR")
    assert "Demain à 9 h" in director.press("Confirmer").text
    # Overnight, two teachers of the other school start teaching here too.
    for user_id in ("usr-t20", "usr-t21"):
        store.directory.attach_teacher_to_class(user_id, "cls-cp-a")
    clock.now = datetime(2026, 8, 21, 7, 0, tzinfo=UTC)
    deliveries = runner.run_due()
    texts = _texts(deliveries)
    assert len(texts) == 1
    assert "2 enseignants manquent" in texts[0] and "Resp-Affect-GAR" in texts[0]
    assert "Marc Dubois" in texts[0] and "Sophie Girard" in texts[0]
    assert "Claire Martin" not in texts[0]  # in the group since yesterday
    assert [b.label for b in deliveries[0].reply.buttons] == ["Les ajouter"]  # type: ignore[union-attr]
    before = len(store.audit.entries())
    proposal = director.press_id(deliveries[0].reply.buttons[0].id)  # type: ignore[union-attr]
    assert "Confirmer" in proposal.buttons  # the normal confirmation flow: nothing done yet
    assert "Sophie Girard" in proposal.text and "Claire Martin" not in proposal.text
    assert [e.outcome for e in store.audit.entries()[before:]] == []
    done = director.press("Confirmer")
    assert "C'est fait" in done.text
    assert [e.outcome for e in store.audit.entries()[before:]] == ["done"]
    group = next(g for g in store.directory.groups(DEMO) if g.name == "Resp-Affect-GAR")
    assert {"usr-t20", "usr-t21"} <= set(group.member_ids)
    assert len([g for g in store.directory.groups(DEMO) if g.name == "Resp-Affect-GAR"]) == 1


# -- the weekly checklist --------------------------------------------------------------------


def test_rappels_turns_the_monday_checklist_on_and_off(
    talk, store: Store, clock: Clock, runner: JobRunner
) -> None:
    clock.now = AUGUST  # a Thursday
    director = talk(DIRECTOR)
    on = director.say("/rappels")
    assert "activé" in on.text and "lundi 24 août" in on.text
    assert director.say("/rappels etat").text.count("activé") == 1
    clock.now = datetime(2026, 8, 24, 6, 0, tzinfo=UTC)  # Monday 8:00 in Paris
    texts = _texts(runner.run_due())
    assert "Rappel du lundi" in texts[0] and "Rentrée à" in "\n".join(texts)
    pending = _reminders(store)
    assert [j.due_at for j in pending] == [datetime(2026, 8, 31, 6, 0, tzinfo=UTC)]
    off = director.say("/rappels")
    assert "désactivé" in off.text
    assert _reminders(store) == []
    clock.now = datetime(2026, 8, 31, 6, 0, tzinfo=UTC)
    assert runner.run_due() == []


def test_rappels_is_for_the_direction_only(talk, store: Store) -> None:
    assert "réservés à la direction" in talk(PARENT).say("/rappels").text
    assert "réservés à la direction" in talk(None).say("/rappels").text
    assert store.jobs.jobs() == []


# -- restarts --------------------------------------------------------------------------------


def test_a_job_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    kb, matcher = shared_kb_and_matcher()
    clock = Clock()
    clock.now = AUGUST
    first = Store.from_url(url)
    first.upgrade()
    import_school(first, DEMO_SCHOOL)
    director = Conversation(Assistant(Settings(), first, kb, matcher, clock=clock), DIRECTOR)
    director.say("rappelle-moi de débloquer les parents le 4 septembre")
    first.dispose()
    second = Store.from_url(url)
    try:
        again = Assistant(Settings(), second, kb, matcher, clock=clock)
        clock.now = datetime(2026, 9, 4, 6, 0, tzinfo=UTC)
        texts = _texts(JobRunner(again.engine, clock).run_due())
        assert len(texts) == 1 and "débloquer les parents" in texts[0]
    finally:
        second.dispose()


def test_a_crashed_claim_is_reclaimed_after_its_lease(store: Store, clock: Clock) -> None:
    jobs = store.jobs
    assert jobs.schedule("check.gar", {}, "k", "o", clock.now, clock.now)
    assert not jobs.schedule("check.gar", {}, "k", "o", clock.now, clock.now)  # idempotent
    (claimed,) = jobs.claim_due("dead", clock.now)
    assert jobs.claim_due("alive", clock.now) == []  # leased
    clock.advance(seconds=61)
    (again,) = jobs.claim_due("alive", clock.now)
    assert again.attempts == 2
    assert not jobs.complete(claimed, clock.now)  # the dead instance's claim is void
    assert jobs.complete(again, clock.now)


def test_a_failing_job_is_retried_with_backoff_then_given_up(store: Store, clock: Clock) -> None:
    jobs = store.jobs
    jobs.schedule("check.gar", {}, "k", "o", clock.now, clock.now)
    for attempt in range(1, 6):
        (job,) = jobs.claim_due("w", clock.now)
        assert job.attempts == attempt
        status = jobs.fail(job, "boom", clock.now)
        assert status == ("failed" if attempt == 5 else "pending")
        assert jobs.claim_due("w", clock.now) == []  # waits for its backoff
        clock.advance(hours=2)
    assert [j.status for j in jobs.jobs()] == ["failed"]


# -- the nightly purge -------------------------------------------------------------------------


def test_the_nightly_purge_deletes_what_is_too_old_and_comes_back_the_next_night(
    talk, store: Store, clock: Clock, runner: JobRunner
) -> None:
    parent = talk(PARENT)
    parent.say("bonjour")
    assert store.conversations.get(parent.key)
    assert runner.run_due() == []  # schedules tonight's purge, not due yet
    purges = [j for j in store.jobs.jobs(status="pending") if j.kind == "maintenance.purge"]
    assert len(purges) == 1
    first = purges[0].due_at
    assert first.astimezone(PARIS).time() == time(3, 30) and first > clock()
    clock.advance(days=89)
    runner.run_due()
    assert store.conversations.get(parent.key)  # 89 days idle: kept
    clock.advance(days=2)
    runner.run_due()
    assert store.conversations.get(parent.key) == {}  # 91 days idle: gone
    purges = [j for j in store.jobs.jobs(status="pending") if j.kind == "maintenance.purge"]
    assert len(purges) == 1 and purges[0].due_at > clock()
    done = [j for j in store.jobs.jobs(status="done") if j.kind == "maintenance.purge"]
    assert len(done) == 2  # one purge per due night, not one per missed night


# -- how a change ended, for the metrics -----------------------------------------------------


def test_a_change_ended_by_a_later_message_is_marked_for_the_metrics(talk, clock: Clock) -> None:
    director = talk(DIRECTOR)
    director.say("bloque les parents")
    clock.advance(minutes=11)
    director.say("bonjour")
    assert director.last.action == ActionOutcome.EXPIRED
    director.say("bloque les parents")
    director.say("/annuler")
    assert director.last.action == ActionOutcome.CANCELLED
    director.say("bonjour")
    assert director.last.action is None
