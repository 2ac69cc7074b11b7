"""Every command of the one table is answered by the core, in private and in a group."""

from __future__ import annotations

import pytest

from bot.core.commands import COMMANDS, Builtin, all_names, command_named, menu_commands
from bot.core.messages import APOLOGY, Menu
from tests.support import DIRECTOR, ERUN, PARENT

UNKNOWN = "Je ne connais pas la commande"
LOGIN_OF = {Menu.PUBLIC: PARENT, Menu.DIRECTOR: DIRECTOR, Menu.ERUN: ERUN}


def _cases() -> list[tuple[Menu, str]]:
    return [(menu, command.name) for menu in Menu for command in menu_commands(menu)]


@pytest.mark.parametrize(("menu", "name"), _cases())
@pytest.mark.parametrize("private", [True, False], ids=["private", "group"])
def test_every_menu_command_is_answered(talk, menu: Menu, name: str, private: bool) -> None:
    seen = talk(LOGIN_OF[menu], private=private).say(f"/{name}")
    assert seen.texts, f"/{name} got no answer"
    assert UNKNOWN not in seen.text
    assert APOLOGY not in seen.text


SCHOOL_COMMANDS = [c.name for c in COMMANDS if (c.intent or "").startswith(("action.", "query."))]


@pytest.mark.parametrize("name", SCHOOL_COMMANDS)
def test_a_school_command_in_a_group_sends_the_director_to_private(talk, name: str) -> None:
    seen = talk(DIRECTOR, private=False).say(f"/{name}")
    assert "message privé" in seen.text
    assert "Confirmer" not in seen.buttons


def test_menus_follow_the_rights() -> None:
    public = {c.name for c in menu_commands(Menu.PUBLIC)}
    erun = {c.name for c in menu_commands(Menu.ERUN)}
    director = {c.name for c in menu_commands(Menu.DIRECTOR)}
    assert public < erun and public < director
    assert {"bloquer", "rattacher", "gar"} <= director - erun
    # The eRun's own commands: never shown to a director or a parent.
    assert erun - director == {"triage", "stats"}
    assert {"checklist", "sans_classe", "groupes", "comptes_manuels"} <= erun - public


def test_names_and_aliases_resolve_with_or_without_the_bot_suffix() -> None:
    assert set(all_names()) >= {c.name for c in COMMANDS}
    assert command_named("HELP@assistant_bot") == command_named("aide")
    assert command_named("cancel") is not None
    assert command_named("cancel").builtin == Builtin.CANCEL  # type: ignore[union-attr]
    assert command_named("inconnue") is None


def test_an_unknown_command_is_escaped(say) -> None:
    seen = say("/<b> CE2")
    assert UNKNOWN in seen.text
    assert "<b>" not in seen.outcome.replies[0].text
