"""Telegram command menus and accepted commands, derived from the core's one command table."""

from __future__ import annotations

import logging

from telegram import Bot, BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from telegram.error import TelegramError
from telegram.ext import Application

from bot.core.commands import all_names, menu_commands
from bot.core.messages import Menu

log = logging.getLogger(__name__)


def bot_commands(menu: Menu) -> list[BotCommand]:
    """The menu as Telegram shows it (the « / » button): the table's commands for that role."""
    return [BotCommand(command.name, command.description) for command in menu_commands(menu)]


def command_names() -> list[str]:
    """Every command routed to the core, aliases included: in a group they are handled even
    without a mention, as Telegram's privacy mode delivers them precisely because they are
    meant for a bot."""
    return all_names()


async def apply_menu(bot: Bot, user_id: int, menu: Menu) -> None:
    """Show this user the menu of their role, in their private chat with the bot."""
    # A user's private chat with the bot has the user's id, so this scope is their own menu.
    scope = BotCommandScopeChat(user_id)
    try:
        if menu == Menu.PUBLIC:
            # Without a menu of its own, the chat shows the default one: the public menu.
            await bot.delete_my_commands(scope=scope)
        else:
            await bot.set_my_commands(bot_commands(menu), scope=scope)
    except TelegramError:
        # The menu is a convenience; the answer has already been sent.
        log.warning("could not set the %s menu of %s", menu, user_id, exc_info=True)


async def set_public_menu(application: Application) -> None:
    """The default menu, for everyone without a menu of their own."""
    await application.bot.set_my_commands(
        bot_commands(Menu.PUBLIC), scope=BotCommandScopeDefault()
    )
