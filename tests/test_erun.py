"""The eRun's side through the real core: tickets opened, routed and masked; /triage,
« Répondre », « C'est la FAQ… », « Nouvelle réponse », « Clore »; scoping; notification;
/oublier and the purge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.app import DEMO_SCHOOL
from bot.core.assistant import Assistant
from bot.core.job_runner import JobRunner
from bot.core.jobs import SendMessage
from bot.core.ticket_records import Reason, Resolution
from bot.settings import Settings
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from intents.kb import html_to_text
from tests.support import Clock, Conversation, shared_kb_and_matcher

OUT_OF_SCOPE = "où trouver le menu de la cantine de cette semaine ?"
OTHER_QUESTION = "comment inscrire mon fils au centre de loisirs du mercredi"


def _two_circonscriptions() -> dict:  # type: ignore[type-arg]
    """The demo school file, and a school of another circonscription with its eRun."""
    school = json.loads(DEMO_SCHOOL.read_text(encoding="utf-8"))
    school["structures"].append(
        {
            "id": "0599999Z",
            "name": "École élémentaire Victor Hugo",
            "city": "Roubaix",
            "circonscription": "Roubaix 2",
            "classes": [{"id": "cls-vh-cp", "name": "CP", "level": "CP"}],
        }
    )
    template = next(u for u in school["users"] if u["login"] == "erun.lille1")
    school["users"].append(
        {
            **template,
            "id": "usr-erun-rbx",
            "login": "erun.roubaix2",
            "first_name": "Rémi",
            "last_name": "Roubaix",
            "structures": ["0599999Z"],
            "home_structure": "0599999Z",
            "classes": [],
        }
    )
    return school  # type: ignore[no-any-return]


@pytest.fixture
def store() -> Iterator[Store]:
    store = Store.in_memory()
    store.upgrade()
    import_school(store, _two_circonscriptions())
    yield store
    store.dispose()


@pytest.fixture
def runner(assistant: Assistant, clock: Clock) -> JobRunner:
    return JobRunner(assistant.engine, clock, worker="test")


def _sent(runner: JobRunner) -> dict[str, list[str]]:
    """Run the due jobs: the texts sent, by speaker key."""
    sent: dict[str, list[str]] = {}
    for delivery in runner.run_due():
        if isinstance(delivery, SendMessage):
            sent.setdefault(delivery.speaker_key, []).append(html_to_text(delivery.reply.text))
    return sent


def _open(store: Store, queue: str = "Lille 1") -> list:  # type: ignore[type-arg]
    return store.tickets.open_in(queue)


# -- opening a ticket ----------
def test_an_unanswered_question_is_handed_over_and_its_school_asked_once(talk, store) -> None:
    parent = talk(None)
    seen = parent.say(OUT_OF_SCOPE)
    assert "je ne sais pas répondre" in seen.text
    assert "Je transmets votre question à l'eRun de votre circonscription" in seen.text
    assert "De quelle école s'agit-il ?" in seen.text
    [ticket] = _open(store)  # the default queue: the directory's first circonscription
    assert ticket.reason == Reason.OUT_OF_SCOPE and ticket.structure_id is None
    assert ticket.speaker_key == parent.key and ticket.question == OUT_OF_SCOPE
    seen = parent.say("c'est l'école Victor Hugo de Roubaix")
    assert "transmise à l'eRun de la circonscription Roubaix 2" in seen.text
    assert _open(store) == [] and [t.id for t in _open(store, "Roubaix 2")] == [ticket.id]
    # Asked once: the next question goes straight to that school's circonscription.
    seen = parent.say(OTHER_QUESTION)
    assert "De quelle école" not in seen.text
    assert len(_open(store, "Roubaix 2")) == 2


def test_a_message_that_names_no_school_is_read_as_a_message(talk, store) -> None:
    parent = talk(None)
    parent.say(OUT_OF_SCOPE)
    seen = parent.say("j'ai oublié mon mot de passe educonnect")
    assert "EduConnect" in seen.text and "transmise" not in seen.text
    assert [t.structure_id for t in _open(store)] == [None]


def test_phone_numbers_addresses_and_ine_are_masked_in_what_is_stored(talk, store) -> None:
    talk(None).say(
        "pour la cantine rappelez moi au 06 12 34 56 78 ou ecrivez a jean.dupont@gmail.com, "
        "INE de mon fils 123456789AB"
    )
    [ticket] = _open(store)
    assert "06 12" not in ticket.question and "gmail" not in ticket.question
    assert "123456789AB" not in ticket.question
    assert "[téléphone]" in ticket.question and "[e-mail]" in ticket.question


def test_a_director_s_ticket_goes_to_the_circonscription_of_the_school(talk, store) -> None:
    seen = talk("claire.martin").say(OUT_OF_SCOPE)
    assert "Je transmets" in seen.text and "De quelle école" not in seen.text
    [ticket] = _open(store)
    assert ticket.structure_id == "0590123A"


def test_nothing_is_handed_over_from_an_erun_a_group_or_a_word(talk, store) -> None:
    assert "Je transmets" not in talk("erun.lille1").say(OUT_OF_SCOPE).text
    assert (
        "Je transmets"
        not in talk(None, key="test:group", private=False).say(f"@bot {OUT_OF_SCOPE}").text
    )
    talk(None).say("zzz")
    assert _open(store) == []


def test_asking_for_a_person_asks_the_question_then_hands_it_over(talk, store) -> None:
    parent = talk(None)
    seen = parent.say("je veux parler a un humain")
    assert "Quelle est votre question ?" in seen.text and _open(store) == []
    seen = parent.say("ma fille n'a pas reçu ses identifiants pour l'ENT")
    assert "Je transmets" in seen.text
    [ticket] = _open(store)
    assert ticket.reason == Reason.HUMAN


def test_thumbs_down_hands_the_answer_s_question_over_thumbs_up_does_not(talk, store) -> None:
    parent = talk(None)
    seen = parent.say("j'ai perdu mon mot de passe educonnect")
    assert seen.buttons[-2:] == ["👍", "👎"]
    assert "Merci pour votre retour" in parent.press("👍").text and _open(store) == []
    parent.say("j'ai perdu mon mot de passe educonnect")
    seen = parent.press("👎")
    assert "Je transmets" in seen.text
    [ticket] = _open(store)
    assert ticket.reason == Reason.THUMBS_DOWN
    assert ticket.top_candidate == "educonnect.forgot_credentials"


def test_none_of_the_suggestions_hands_the_question_over(talk, store, assistant, monkeypatch):
    from intents.nlu.understanding import Understanding

    def close_call(*_args: object, **_kwargs: object) -> Understanding:
        choices = ["educonnect.activate", "educonnect.switch"]
        return Understanding(
            "educonnect.activate", 0.6, {}, [], None, ambiguous=True, choices=choices
        )

    monkeypatch.setattr(assistant.understander, "understand", close_call)
    parent = talk(None)
    parent.say("educonnect pour mon beau fils")
    assert "Je transmets" in parent.press("Aucune de ces réponses").text
    [ticket] = _open(store)
    assert (
        ticket.reason == Reason.UNRESOLVED and ticket.question == "educonnect pour mon beau fils"
    )


# -- the eRun's commands ----------
def test_triage_groups_the_questions_of_the_erun_s_circonscription_only(talk, store) -> None:
    for number in range(3):
        talk(None, key=f"test:parent{number}").say(OUT_OF_SCOPE)
    talk(None, key="test:other").say(OTHER_QUESTION)
    seen = talk("erun.lille1").say("/triage")
    assert "4 questions ouvertes" in seen.text and "2 groupes" in seen.text
    assert seen.texts[0].index("3×") < seen.texts[0].index("1×")
    assert "Aucune question en attente pour la circonscription Roubaix 2" in (
        talk("erun.roubaix2").say("/triage").text
    )


@pytest.mark.parametrize("login", ["claire.martin", None])
def test_directors_and_parents_cannot_open_the_queue(talk, store, login) -> None:
    talk(None, key="test:asker").say(OUT_OF_SCOPE)
    for command in ("/triage", "/stats"):
        seen = talk(login).say(command)
        assert "réservée aux eRun de circonscription" in seen.text
        assert OUT_OF_SCOPE not in seen.text


def test_reply_reaches_each_asker_with_their_question(talk, store, runner) -> None:
    talk(None, key="test:a").say(OUT_OF_SCOPE)
    talk(None, key="test:b").say("ou trouver le menu de la cantine cette semaine")
    erun = talk("erun.lille1")
    erun.say("/triage")
    erun.press("1. " + erun.last.replies[0].buttons[0].label.split(". ", 1)[1])  # type: ignore[union-attr]
    seen = erun.press("Répondre")
    assert "Écrivez votre réponse" in seen.text
    seen = erun.say("Le menu est affiché sur le blog de l'école, rubrique cantine.")
    assert "Réponse envoyée : 2 personnes" in seen.text
    assert seen.outcome.jobs_due
    sent = _sent(runner)
    assert set(sent) == {"test:a", "test:b"}
    assert "Réponse de l'eRun" in sent["test:a"][0] and OUT_OF_SCOPE in sent["test:a"][0]
    assert "rubrique cantine" in sent["test:b"][0]
    assert _open(store) == []
    assert _sent(runner) == {}  # sent once


def test_it_is_the_faq_teaches_the_phrasing_at_once(talk, store, runner) -> None:
    question = "c'est quoi le sésame de chacun pour entrer sur l'espace numérique"
    parent = talk(None, key="test:teach")
    parent.say(question)
    [ticket] = _open(store)
    erun = talk("erun.lille1")
    erun.say("/triage")
    erun.press(erun.last.replies[0].buttons[0].label)  # type: ignore[union-attr]
    seen = erun.press("C'est la FAQ…")
    assert "Quelle fiche répond" in seen.text
    seen = erun.say("identifiants")
    title = erun.assistant.kb.title("accounts.identifiers")
    assert title in seen.buttons
    seen = erun.press(title)
    assert "1 personne reçoivent" in seen.text or "1 personne reçoit" in seen.text
    assert "J'ai appris 1 formulation" in seen.text
    assert [p.text for p in store.tickets.learned()] == [question]
    sent = _sent(runner)
    assert "a répondu à votre question" in sent["test:teach"][0]
    # The next message asking the same is answered by the assistant itself.
    again = talk(None, key="test:someone-else").say(question)
    assert again.outcome.intent == store.tickets.learned()[0].intent
    assert store.tickets.get([ticket.id])[0].resolution == Resolution.FAQ


def test_a_new_answer_is_sent_and_kept_as_a_draft(talk, store, runner) -> None:
    talk(None, key="test:d").say(OUT_OF_SCOPE)
    erun = talk("erun.lille1")
    erun.say("/triage")
    erun.press(erun.last.replies[0].buttons[0].label)  # type: ignore[union-attr]
    erun.press("Nouvelle réponse")
    seen = erun.say("Les menus sont publiés chaque vendredi sur le blog.")
    assert "brouillon de fiche n° 1" in seen.text
    [draft] = store.tickets.drafts()
    assert draft.question == OUT_OF_SCOPE and "vendredi" in draft.answer
    assert "vendredi" in _sent(runner)["test:d"][0]


def test_close_sends_nothing_and_a_colleague_s_second_answer_is_refused(talk, store, runner):
    talk(None, key="test:c").say(OUT_OF_SCOPE)
    first, second = talk("erun.lille1"), talk("erun.lille1", key="test:erun-colleague")
    for erun in (first, second):
        erun.say("/triage")
        erun.press(erun.last.replies[0].buttons[0].label)  # type: ignore[union-attr]
    assert "Clos : 1 question" in first.press("Clore").text
    assert "déjà été traitées" in second.press("Répondre").text
    assert "test:c" not in _sent(runner)


def test_an_erun_of_another_circonscription_cannot_answer_by_replaying_a_group(talk, store):
    talk(None, key="test:x").say(OUT_OF_SCOPE)
    [ticket] = _open(store)
    other = talk("erun.roubaix2")
    taken = store.tickets.resolve(
        [ticket.id], "Roubaix 2", Resolution.CLOSED, "erun.roubaix2", other.assistant.clock()
    )
    assert taken == [] and _open(store) == [ticket]


# -- notification ----------
def test_new_tickets_are_notified_in_one_message_a_minute(talk, store, runner, clock) -> None:
    code = store.accounts.invite("erun.lille1", clock())
    store.accounts.redeem("telegram:900", code, clock())
    for number in range(3):
        talk(None, key=f"test:n{number}").say(OUT_OF_SCOPE)
    assert _sent(runner) == {}  # not before the minute is over
    clock.advance(minutes=1)
    sent = _sent(runner)
    assert list(sent) == ["telegram:900"] and len(sent["telegram:900"]) == 1
    assert (
        "3 nouvelles questions transmises pour la circonscription Lille 1"
        in (sent["telegram:900"][0])
    )
    clock.advance(minutes=2)
    assert _sent(runner) == {}  # each ticket notified once


# -- personal data ----------
def test_forget_erases_the_speaker_s_tickets(talk, store) -> None:
    parent = talk(None, key="test:forget")
    parent.say(OUT_OF_SCOPE)
    talk(None, key="test:stays").say(OUT_OF_SCOPE)
    parent.say("/oublier")
    seen = parent.press("Effacer mes données")
    assert "1 question transmise à l'eRun" in seen.text
    assert [t.speaker_key for t in _open(store)] == ["test:stays"]


def test_tickets_older_than_the_retention_are_purged(talk, store, clock, assistant) -> None:
    talk(None, key="test:old").say(OUT_OF_SCOPE)
    clock.advance(days=91)
    talk(None, key="test:new").say(OUT_OF_SCOPE)
    assistant.housekeeping(force=True)  # the question counts written
    done = store.purge(90, 365, clock())
    assert done.tickets == 1 and done.logged_questions == 1
    assert [t.speaker_key for t in _open(store)] == ["test:new"]


def test_stats_show_the_erun_s_figures_with_a_chart(talk, store) -> None:
    talk(None).say("j'ai perdu mon mot de passe educonnect")
    talk(None, key="test:s").say(OUT_OF_SCOPE)
    seen = talk("erun.lille1").say("/stats")
    reply = seen.outcome.replies[-1]
    assert reply.image is not None and reply.image.startswith(b"\x89PNG")
    assert "7 derniers jours" in seen.text or "7 jours" in seen.text


def test_assistant_settings_default_queue(store, clock) -> None:
    kb, matcher = shared_kb_and_matcher()
    assistant = Assistant(
        Settings(ticket_default_queue="Roubaix 2"), store, kb, matcher, clock=clock
    )
    Conversation(assistant, None).say(OUT_OF_SCOPE)
    assert len(store.tickets.open_in("Roubaix 2")) == 1
    assert timedelta(0) == timedelta(0)
