"""User text never becomes markup: hostile strings typed by every role, or carried by a
school file's names, come back as well-formed Telegram HTML with the text escaped."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import DEMO_SCHOOL
from bot.core import slash
from bot.core.assistant import Assistant
from bot.core.markup import html_problem, repaired
from bot.core.messages import APOLOGY, Outcome
from bot.settings import Settings
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from intents.kb import html_to_text
from tests.html_oracle import telegram_html_problems
from tests.support import (
    DIRECTOR,
    ERUN,
    OTHER_DIRECTOR,
    PARENT,
    Clock,
    Conversation,
    shared_kb_and_matcher,
)

ROLES = [None, PARENT, DIRECTOR, ERUN, OTHER_DIRECTOR]
HOSTILE = ["<b>", "</i>", "&", "<a href=x>", "<b>gras</b> &amp; <i>"]
# Where a user's words go: commands and their arguments, names, groups, classes, schools.
SAID = [
    "/{h}",
    "/{h} CE2",
    "/connexion {h}",
    "/start {h}",
    "/rattacher {h}",
    "/detacher M. {h}",
    "/supprimer_groupe {h}",
    "/supprimer_compte {h}",
    "/gar sauf {h}",
    "/groupes {h}",
    "{h}",
    "détache Mme {h} Zzyzx",
    "rattache Mme Leroy au CE2 {h}",
    "rattache {h} au CM1",
    "supprime le groupe {h}",
    "supprime le compte manuel de {h}",
    "bloque les parents {h}",
    "où en est l'école {h} pour la rentrée ?",
    "comment activer educonnect {h} ?",
]


def well_formed(outcome: Outcome, said: str) -> None:
    """Every reply is HTML Telegram accepts, never the apology, never raw hostile markup."""
    assert outcome.replies, said
    for reply in outcome.replies:
        assert reply.text != APOLOGY, said
        problems = telegram_html_problems(reply.text)
        assert not problems, f"{said!r} → {problems}: {reply.text[:300]!r}"
        assert "<a href=x>" not in reply.text, said


def no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    """The core's check (bot.core.markup) did not have to repair a reply: it logs an error."""
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


def then_each_button(person: Conversation, outcome: Outcome, said: str) -> None:
    """Press each button of that answer (as the same person, in turn) and check the replies."""
    for label in [b.label for r in outcome.replies for b in r.buttons][:4]:
        person.say(said)
        try:
            pressed = person.press(label)
        except AssertionError:  # the repeated question showed other buttons
            continue
        well_formed(pressed.outcome, f"{said} → {label}")


@pytest.mark.parametrize("login", ROLES, ids=lambda login: login or "public")
def test_hostile_text_typed_by_every_role_comes_back_escaped(
    talk: Callable[..., Conversation], login: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    for template in SAID:
        for hostile in HOSTILE:
            person = talk(login, key=f"test:{login}:{template}")
            said = template.format(h=hostile)
            seen = person.say(said)
            well_formed(seen.outcome, said)
            then_each_button(person, seen.outcome, said)
    no_error_logged(caplog)


@pytest.mark.parametrize("login", ROLES, ids=lambda login: login or "public")
@pytest.mark.parametrize("hostile", HOSTILE)
def test_an_unknown_command_is_quoted_back_as_text(
    talk: Callable[..., Conversation],
    login: str | None,
    hostile: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = talk(login).say(f"/{hostile} CE2")
    well_formed(seen.outcome, hostile)
    no_error_logged(caplog)
    # What the user reads is what they typed, up to the first space (the command's name):
    # Telegram shows the entities as the characters they stand for.
    assert f"la commande /{hostile.split()[0]}." in seen.text


def test_a_forgotten_escape_is_caught_before_telegram_refuses_the_reply(
    talk: Callable[..., Conversation],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As if the unknown-command reply had forgotten its escape.
    monkeypatch.setattr(slash, "escape", lambda text: text)
    seen = talk(DIRECTOR).say("/<b> CE2")
    well_formed(seen.outcome, "/<b> CE2")
    # The words still reach the user, as plain text; the bug is in the operator's log.
    assert "Je ne connais pas la commande /<b>" in seen.text
    assert any(
        r.levelno == logging.ERROR and "malformed HTML" in r.getMessage() for r in caplog.records
    )


# -- names from a school file ------------------------------------------------------------------


def _hostile_school() -> dict:
    """The demo school with markup in every name a reply may quote."""
    school = json.loads(DEMO_SCHOOL.read_text(encoding="utf-8"))
    for structure in school["structures"]:
        structure["name"] += " <b> & </i>"
        for school_class in structure["classes"]:
            school_class["name"] += " <i>"
    for group in school["groups"]:
        group["name"] = group["name"].replace("Chorale", "Chorale <b>").replace("APE", "APE &")
    for number, user in enumerate(school["users"]):
        user["last_name"] += ["", " <a href=x>", " &", " </i>"][number % 4]
    for favorite in school["share_favorites"]:
        favorite["name"] += " <u"
    return school


@pytest.fixture
def hostile_school(clock: Clock) -> Iterator[Assistant]:
    store = Store.in_memory()
    store.upgrade()
    import_school(store, copy.deepcopy(_hostile_school()))
    kb, matcher = shared_kb_and_matcher()
    yield Assistant(Settings(), store, kb, matcher, clock=clock)
    store.dispose()


SCHOOL_REQUESTS = [
    "/groupes",
    "/sans_classe",
    "/comptes_manuels",
    "/checklist",
    "/rattacher",
    "/detacher",
    "/supprimer_groupe",
    "/supprimer_compte",
    "/gar",
    "/bloquer",
    "/debloquer",
    "rattache Mme Leroy au CE2",
    "détache M. Petit",
    "supprime le groupe chorale",
    "supprime le groupe Resp-Affect-GAR",
    "supprime le compte de Kévin Lagache",
    "où en est l'école Pasteur ?",
]


@pytest.mark.parametrize("login", [DIRECTOR, ERUN, OTHER_DIRECTOR])
def test_names_from_the_school_file_are_escaped_in_every_reply(
    hostile_school: Assistant, login: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    for said in SCHOOL_REQUESTS:
        person = Conversation(hostile_school, login, key=f"test:{login}:{said}")
        seen = person.say(said)
        well_formed(seen.outcome, said)
        then_each_button(person, seen.outcome, said)
    no_error_logged(caplog)


def test_the_hostile_names_are_shown_as_written(hostile_school: Assistant) -> None:
    director = Conversation(hostile_school, DIRECTOR)
    groups = director.say("/groupes").outcome.replies[0].text
    assert "Chorale &lt;b&gt; 2025-2026" in groups
    assert "« École primaire Jean Jaurès &lt;b&gt; &amp; &lt;/i&gt; »" in groups
    manual = html_to_text(director.say("/comptes_manuels").outcome.replies[0].text)
    assert "Lagache <a href=x>" in manual or "Lagache &" in manual or "Lagache </i>" in manual


# -- any text, from anyone ---------------------------------------------------------------------

_MARKUP_HEAVY = st.lists(
    st.sampled_from([*"<>&/;\"'=ab #é", "<b>", "</i>", "&amp;", "<a href=x>", "Leroy", "CE2"]),
    max_size=20,
).map("".join)
_WORDS = st.sampled_from(
    ["/", "/connexion ", "/rattacher ", "/detacher ", "supprime le groupe ", "détache ", ""]
)


@settings(
    max_examples=150,
    deadline=None,
    # One assistant for all examples: conversations carry over, as for real users.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(role=st.sampled_from(ROLES), lead=_WORDS, text=_MARKUP_HEAVY | st.text(max_size=60))
def test_any_text_from_any_role_gets_well_formed_html(
    talk: Callable[..., Conversation], role: str | None, lead: str, text: str
) -> None:
    said = lead + text
    seen = talk(role).say(said)
    if not said.strip():
        return
    well_formed(seen.outcome, said)


@given(text=_MARKUP_HEAVY | st.text(max_size=60))
def test_the_core_check_agrees_with_telegram_and_its_repair_is_always_accepted(
    text: str,
) -> None:
    if html_problem(text) is None:
        assert telegram_html_problems(text) == [], text
    assert telegram_html_problems(repaired(text)) == [], text
    if not {"<", "&"} & set(text):
        # Without markup, nothing is lost: the user reads exactly the original.
        assert html_to_text(repaired(text)) == text
