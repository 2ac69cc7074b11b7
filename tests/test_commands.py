"""Every command of the one table, through the real PTB stack and the fake Bot API: the menus
Telegram shows are the table's, and each command is answered in private and in a group."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from bot.channels.telegram.menus import bot_commands
from bot.core.assistant import Assistant
from bot.core.commands import COMMANDS, all_names, menu_commands
from bot.core.messages import APOLOGY, Menu
from bot.storage.store import Store
from tests.support import DIRECTOR, ERUN, Clock
from tests.telegram_support import Bot, labels, menu_of, running_bot, table_menu

UNKNOWN = "Je ne connais pas la commande"
PRIVATE_ONLY = "message privé"
# What a speaker reads when the menu offered a command their role may not run.
DENIALS = (
    "Seule la direction de l'école peut faire cette action",
    "Cette action n'est pas possible depuis votre compte",
    "les modifications de l'annuaire sont faites par la direction",
)
# The public menu is for anyone: an unlinked Telegram user.
LOGIN_OF = {Menu.PUBLIC: None, Menu.DIRECTOR: DIRECTOR, Menu.ERUN: ERUN}
USER_ID = 6100
SCHOOL_COMMANDS = {c.name for c in COMMANDS if (c.intent or "").startswith(("action.", "query."))}
# Telegram refuses a menu whose commands break these rules (setMyCommands).
COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")


@pytest_asyncio.fixture
async def bot(store: Store, assistant: Assistant, clock: Clock) -> AsyncIterator[Bot]:
    async with running_bot(store, assistant, clock) as running:
        yield running


def _cases() -> list[tuple[Menu, str]]:
    return [(menu, command.name) for menu in Menu for command in menu_commands(menu)]


def _case_id(case: tuple[Menu, str]) -> str:
    return f"{case[0]}-{case[1]}"


async def _speaker(bot: Bot, menu: Menu) -> dict[str, Any]:
    """A Telegram user who sees that menu: linked to the directory account of that role."""
    user = bot.api.user(USER_ID, "Camille")
    login = LOGIN_OF[menu]
    if login is not None:
        welcome = await bot.link(user, login)
        assert "Bienvenue" in welcome.params["text"]
    return user


def _assert_answered(text: str, command: str) -> None:
    assert text.strip(), f"{command} got an empty answer"
    assert UNKNOWN not in text, f"{command} is unknown to the core: {text!r}"
    assert text != APOLOGY, f"{command} failed"


def _chat_scope(user: dict[str, Any]) -> tuple[str, str]:
    """The fake Bot API's key of a user's own menu (their private chat)."""
    return json.dumps({"chat_id": user["id"], "type": "chat"}, sort_keys=True), ""


# -- every command, in private and in a group ---------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(("menu", "name"), _cases(), ids=[_case_id(c) for c in _cases()])
async def test_every_menu_command_is_answered_in_private(bot: Bot, menu: Menu, name: str) -> None:
    user = await _speaker(bot, menu)
    reply = await bot.ask(user, f"/{name}")
    text = reply.params["text"]
    _assert_answered(text, f"/{name}")
    # The menu offers only what the role may do.
    assert not any(denial in text for denial in DENIALS), text


@pytest.mark.asyncio
@pytest.mark.parametrize("suffixed", [True, False], ids=["with_bot_name", "bare"])
@pytest.mark.parametrize(("menu", "name"), _cases(), ids=[_case_id(c) for c in _cases()])
async def test_every_menu_command_is_answered_in_a_group(
    bot: Bot, menu: Menu, name: str, suffixed: bool
) -> None:
    # Bare, the command still reaches the bot: Telegram's privacy mode delivers commands.
    user = await _speaker(bot, menu)
    group = bot.api.group_chat()
    typed = f"/{name}@{bot.username}" if suffixed else f"/{name}"
    mark = bot.api.mark()
    command = bot.api.send_text(user, typed, chat=group)
    reply = await bot.api.wait_call("sendMessage", chat_id=group["id"], after=mark)
    text = reply.params["text"]
    _assert_answered(text, typed)
    # In a group the answer quotes the command, so everyone sees whom it is for.
    assert reply.params["reply_parameters"]["message_id"] == command["message"]["message_id"]
    if name in SCHOOL_COMMANDS or name == "connexion":
        # The school's directory is neither shown nor changed in a group, a code never sent.
        assert PRIVATE_ONLY in text, text
        assert "Confirmer" not in labels(reply)


@pytest.mark.asyncio
@pytest.mark.parametrize("name", all_names())
async def test_every_name_and_alias_is_routed_in_a_group(bot: Bot, name: str) -> None:
    parent = bot.api.user(USER_ID + 1, "Nadia")
    group = bot.api.group_chat()
    reply = await bot.ask(parent, f"/{name}", chat=group)
    _assert_answered(reply.params["text"], f"/{name}")


@pytest.mark.asyncio
async def test_a_command_for_another_bot_is_left_alone(bot: Bot) -> None:
    parent = bot.api.user(USER_ID + 2, "Nadia")
    group = bot.api.group_chat()
    ignored = bot.api.send_text(parent, "/aide@autre_robot_bot", chat=group)
    unknown = bot.api.send_text(parent, "/inconnue", chat=group)
    await bot.settle(ignored)
    await bot.settle(unknown)
    assert not bot.api.calls_of("sendMessage", chat_id=group["id"])


# -- the menus -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_default_menu_is_the_public_menu(bot: Bot) -> None:
    call = await bot.api.wait_call("setMyCommands")
    assert call.params.get("scope", {"type": "default"}) == {"type": "default"}
    assert menu_of(call.params["commands"]) == table_menu(Menu.PUBLIC)
    default = (json.dumps({"type": "default"}), "")
    assert menu_of(bot.api.commands[default]) == table_menu(Menu.PUBLIC)


@pytest.mark.asyncio
@pytest.mark.parametrize("menu", [Menu.DIRECTOR, Menu.ERUN])
async def test_linking_shows_the_menu_of_the_role_and_unlinking_removes_it(
    bot: Bot, menu: Menu
) -> None:
    await bot.api.wait_call("setMyCommands")  # the default menu, at start
    mark = bot.api.mark()
    user = await _speaker(bot, menu)
    call = await bot.api.wait_call("setMyCommands", after=mark)
    assert call.params["scope"] == {"type": "chat", "chat_id": user["id"]}
    assert menu_of(call.params["commands"]) == table_menu(menu)
    assert menu_of(bot.api.commands[_chat_scope(user)]) == table_menu(menu)

    mark = bot.api.mark()
    await bot.ask(user, "/deconnexion")
    removed = await bot.api.wait_call("deleteMyCommands", after=mark)
    assert removed.params["scope"] == {"type": "chat", "chat_id": user["id"]}
    # Without a menu of its own, the chat shows the default one: the public menu.
    assert _chat_scope(user) not in bot.api.commands


def test_the_three_menus_differ_and_keep_telegram_rules() -> None:
    menus = {menu: [c.command for c in bot_commands(menu)] for menu in Menu}
    assert set(menus[Menu.PUBLIC]) < set(menus[Menu.ERUN])
    assert set(menus[Menu.PUBLIC]) < set(menus[Menu.DIRECTOR])
    assert set(menus[Menu.ERUN]) - set(menus[Menu.DIRECTOR]) == {"triage", "stats"}
    for menu in Menu:
        for command in bot_commands(menu):
            assert COMMAND_NAME.match(command.command), command.command
            assert 1 <= len(command.description) <= 256, command.description
