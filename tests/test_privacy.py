"""Personal data, as a user and an operator see it: the notice at /start, /privacy,
/oublier (erases exactly the speaker's data, once, after its button; cancelling erases
nothing), and `accounts export LOGIN`."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import DEMO_SCHOOL
from bot.cli.errors import guarded
from bot.cli.storage import add_commands
from bot.core.assistant import Assistant
from bot.core.commands import menu_commands
from bot.core.messages import APOLOGY, Menu
from bot.settings import Settings, load_settings
from bot.storage.accounts import LinkError
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from bot.storage.tables import FailedLinkAttemptRow
from tests.support import DIRECTOR, ERUN, Conversation, shared_kb_and_matcher
from tests.test_exactly_once import WORKERS, Pool, pool  # noqa: F401 - the process pool

ERASE = "Effacer mes données"
KEEP = "Ne rien effacer"
GONE = "Ce bouton n'est plus valide"


def _failed(store: Store, speaker: str) -> int:
    with store.session() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(FailedLinkAttemptRow)
                .where(FailedLinkAttemptRow.speaker_key == speaker)  # type: ignore[arg-type]
            )
            or 0
        )


def _linked(assistant: Assistant, store: Store, key: str, login: str) -> Conversation:
    """A Telegram chat linked to `login` the way a director does it, after one wrong code."""
    chat = Conversation(assistant, None, key=key)
    assert "pas valable" in chat.say("/connexion ZZZZZZZZ").text
    code = store.accounts.invite(login)
    assert "Bienvenue" in chat.say(f"/connexion {code}").text
    return chat


# --- the notice and /privacy ------------------------------------------------------------


def test_start_shows_a_short_privacy_notice(say) -> None:
    seen = say("/start")
    assert "Bonjour" in seen.texts[0]
    notice = seen.texts[-1]
    assert "/privacy pour le détail" in notice and "/oublier" in notice
    assert len(notice.splitlines()) <= 2
    # A deep link shows it too: it may be the first message of the conversation.
    assert "/privacy pour le détail" in say("/start educonnect").texts[-1]


def test_privacy_says_what_is_stored_why_how_long_and_whom_to_ask(say) -> None:
    seen = say("/privacy")
    assert seen.intent == "privacy.notice"
    text = seen.text
    for stored in (
        "état de notre conversation",
        "liaison avec votre compte ENT",
        "codes de connexion erronés",
        "journal des actions de la direction",
        "ONDE",
    ):
        assert stored in text, stored
    assert "90 jours" in text and "365 jours" in text
    assert "pour retracer" in text and "pour continuer la conversation" in text
    assert "délégué à la protection des données" in text and "/oublier" in text
    assert "ni date de naissance" in text


def test_privacy_follows_the_settings_and_escapes_the_contact(store: Store) -> None:
    kb, matcher = shared_kb_and_matcher()
    settings = Settings(
        retention_days=30, audit_retention_days=400, privacy_contact="DPD <dpd> & co"
    )
    seen = Conversation(Assistant(settings, store, kb, matcher), None).say("/privacy")
    assert "30 jours" in seen.text and "400 jours" in seen.text
    assert "DPD <dpd> & co" in seen.text
    assert "DPD &lt;dpd&gt; &amp; co" in seen.outcome.replies[0].text


def test_privacy_and_oublier_are_in_every_menu() -> None:
    for menu in Menu:
        names = {command.name for command in menu_commands(menu)}
        assert {"privacy", "oublier"} <= names, menu


# --- /oublier ------------------------------------------------------------------------------


def test_oublier_erases_exactly_the_speakers_data(assistant: Assistant, store: Store) -> None:
    director = _linked(assistant, store, "telegram:100", DIRECTOR)
    erun = _linked(assistant, store, "telegram:200", ERUN)
    erun.say("où en est l'école pour la rentrée ?")
    director.say("bloque les parents")
    assert "C'est fait" in director.press("Confirmer").text
    director.say("supprime le groupe APE 2021-2022")  # left pending
    acted = len([e for e in store.audit.entries() if e.who == "telegram:100"])
    assert acted >= 1
    others_before = [e for e in store.audit.entries() if e.who != "telegram:100"]
    erun_state = store.conversations.get("telegram:200")

    asked = director.say("/oublier")
    assert "L'effacement est définitif" in asked.text and "claire.martin" in asked.text
    assert asked.buttons == [ERASE, KEEP]
    # Nothing is erased before the button.
    assert store.accounts.login_for("telegram:100") == DIRECTOR
    assert _failed(store, "telegram:100") == 1

    done = director.press(ERASE)
    assert done.intent == "privacy.forget"
    assert "la liaison avec le compte ENT « claire.martin »" in done.text
    assert "1 code de connexion erroné" in done.text
    assert "la demande qui attendait votre confirmation (annulée)" in done.text
    assert "Confirmer" in done.removed  # the pending change's buttons are taken away
    assert "Gardé :" in done.text and "telegram:anonyme-" in done.text
    assert done.outcome.menu == Menu.PUBLIC

    assert store.accounts.login_for("telegram:100") is None
    assert _failed(store, "telegram:100") == 0
    assert store.conversations.load("telegram:100") == ({}, 0)
    entries = store.audit.entries()
    assert not [e for e in entries if e.who == "telegram:100"]
    pseudonymised = [e for e in entries if e.who.startswith("telegram:anonyme-")]
    # Every entry kept (the pending change's end included), under one pseudonym.
    assert len(pseudonymised) == acted + 1 and len({e.who for e in pseudonymised}) == 1
    assert pseudonymised[-1].outcome == "cancelled"
    assert pseudonymised[0].who in done.text
    # Nobody else's data moved.
    assert [e for e in entries if not e.who.startswith("telegram:anonyme-")] == others_before
    assert store.accounts.login_for("telegram:200") == ERUN
    assert _failed(store, "telegram:200") == 1
    assert store.conversations.get("telegram:200") == erun_state
    # The chat is now a member of the public: no director action any more.
    assert "Confirmer" not in director.say("bloque les parents").buttons


def test_the_erase_button_works_once(assistant: Assistant, store: Store) -> None:
    chat = _linked(assistant, store, "telegram:300", DIRECTOR)
    chat.say("/oublier")
    erase = chat.button_id(ERASE)
    assert "C'est fait" in chat.press_id(erase).text
    assert store.conversations.load("telegram:300") == ({}, 0)
    again = chat.press_id(erase)
    assert GONE in again.text and "C'est fait" not in again.text


def test_cancelling_oublier_erases_nothing(assistant: Assistant, store: Store) -> None:
    chat = _linked(assistant, store, "telegram:400", DIRECTOR)
    chat.say("bloque les parents")
    pending = store.conversations.get("telegram:400")["pending"]
    entries = store.audit.entries()
    chat.say("/oublier")
    kept = chat.press(KEEP)
    assert "rien n'a été effacé" in kept.text
    assert store.accounts.login_for("telegram:400") == DIRECTOR
    assert _failed(store, "telegram:400") == 1
    assert store.conversations.get("telegram:400")["pending"] == pending
    assert store.audit.entries() == entries
    # The erase button of that prompt is gone with it; the pending change still confirms.
    assert GONE in chat.press(ERASE, earlier=True).text
    assert "C'est fait" in chat.press("Confirmer", earlier=True).text


def test_oublier_typed_in_a_group_erases_nothing(assistant: Assistant, store: Store) -> None:
    _linked(assistant, store, "telegram:500", DIRECTOR)
    seen = Conversation(assistant, None, key="telegram:500", private=False).say("/oublier")
    assert "en message privé" in seen.text and not seen.buttons
    assert store.accounts.login_for("telegram:500") == DIRECTOR


def test_oublier_for_someone_with_nothing_stored(say) -> None:
    say("/oublier")
    done = say(ERASE)  # a button's label typed is a press
    assert "aucune liaison avec un compte ENT" in done.text
    assert "aucun code de connexion erroné" in done.text and "Gardé" not in done.text


# --- exactly once across processes (PostgreSQL) ---------------------------------------------


def test_one_erase_pressed_at_once_by_several_processes_erases_once(pool: Pool) -> None:  # noqa: F811
    for trial in range(5):
        key = f"telegram:9{trial}{os.getpid()}"
        chat = _linked(pool.assistant, pool.store, key, DIRECTOR)
        chat.say("bloque les parents")
        chat.say("/oublier")
        answers = pool.at_once([(key, None, {"press": chat.button_id(ERASE)})] * WORKERS)
        assert sum("C'est fait. J'ai effacé" in a for a in answers) == 1, answers
        assert sum(GONE in a for a in answers) == WORKERS - 1, answers
        assert all(APOLOGY not in a for a in answers)
        assert pool.store.accounts.login_for(key) is None
        # The presses that lost were answered as new messages: their state starts afresh.
        state = pool.store.conversations.get(key)
        assert state.get("pending") is None and not state.get("buttons"), state
        assert not [e for e in pool.store.audit.entries() if e.who == key]


# --- accounts export -------------------------------------------------------------------------


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    """A SQLite file with the demo school."""
    url = f"sqlite:///{tmp_path / 'export.db'}"
    opened = Store.from_url(url)
    opened.upgrade()
    import_school(opened, DEMO_SCHOOL)
    opened.dispose()
    yield url


def _cli(url: str, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="bot")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return guarded(lambda: args.func(args, load_settings(database_url=url)))


def test_accounts_export_prints_everything_stored_about_the_account(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.from_url(database)
    try:
        kb, matcher = shared_kb_and_matcher()
        assistant = Assistant(Settings(), store, kb, matcher)
        chat = _linked(assistant, store, "telegram:600", DIRECTOR)
        chat.say("bloque les parents")
        chat.press("Confirmer")
        chat.say("où trouver le menu de la cantine, mon numéro 06 12 34 56 78")  # a ticket
        # Another director's action naming her as a target, and one that does not.
        store.audit.record("console:marc.dubois", "action.detach_teacher", ["usr-t01"], "done")
        store.audit.record("console:marc.dubois", "action.detach_teacher", ["usr-t02"], "done")
        with pytest.raises(LinkError):
            store.accounts.redeem("telegram:600", "YYYYYYYY")
    finally:
        store.dispose()
    assert _cli(database, "accounts", "export", DIRECTOR) == 0
    export = json.loads(capsys.readouterr().out)
    assert export["login"] == DIRECTOR
    record = export["directory"]
    assert record["id"] == "usr-t01" and record["last_name"] == "Martin"
    assert record["functions"] == ["DIRECTOR"] and "birth_date" not in record
    assert "Resp-Affect-GAR" in {g["name"] for g in record["groups"]}
    assert [link["speaker_key"] for link in export["account_links"]] == ["telegram:600"]
    assert len(export["link_codes"]) == 1 and "code_hash" not in export["link_codes"][0]
    assert export["link_codes"][0]["used_at"] is not None
    assert len(export["failed_link_attempts"]) == 2  # the one before linking, and one after
    assert [c["speaker_key"] for c in export["conversations"]] == ["telegram:600"]
    assert "menu" in export["conversations"][0]["state"]
    [ticket] = export["tickets"]
    assert ticket["speaker_key"] == "telegram:600" and ticket["status"] == "open"
    assert "cantine" in ticket["question"] and "[téléphone]" in ticket["question"]
    audit = export["audit"]
    assert {(e["who"], e["action"], e["outcome"]) for e in audit} == {
        ("telegram:600", "action.block", "done"),
        ("console:marc.dubois", "action.detach_teacher", "done"),
    }
    assert all("usr-t02" not in e["targets"] for e in audit)


def test_accounts_export_of_an_unknown_login_is_refused_in_french(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(database, "accounts", "export", "personne.inconnue") == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == "Aucun compte « personne.inconnue » dans l'annuaire."
    assert captured.out == ""
