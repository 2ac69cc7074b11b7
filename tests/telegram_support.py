"""Helpers shared by the Telegram tests: the real PTB stack running against the fake Bot API,
what a user sees of a reply, and the `python -m bot` subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram.ext import Application

from bot.channels.telegram.app import build_application, polling_session
from bot.channels.telegram.fake_bot_api import FAKE_TOKEN, Call, FakeBotApi
from bot.channels.telegram.flow import FloodGuard
from bot.core.assistant import Assistant
from bot.core.commands import menu_commands
from bot.core.messages import Menu
from bot.settings import Settings, load_settings
from bot.storage.store import Store
from tests.support import ROOT, Clock


class FloodClock:
    """The flood guard's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Bot:
    """The running bot and the fake Telegram around it."""

    api: FakeBotApi
    app: Application
    store: Store
    assistant: Assistant
    clock: Clock
    flood_clock: FloodClock

    @property
    def username(self) -> str:
        """The bot's @name, as users type it."""
        return str(self.api.bot_user["username"])

    async def ask(self, user: dict[str, Any], text: str, **where: Any) -> Call:
        """Send `text` and return the first message the bot sends back to that chat."""
        chat = where.get("chat") or self.api.private_chat(user)
        mark = self.api.mark()
        self.api.send_text(user, text, **where)
        return await self.api.wait_call("sendMessage", chat_id=chat["id"], after=mark)

    async def settle(self, update: dict[str, Any]) -> None:
        """Until `update` and all before it are fully processed (no sleeping and hoping)."""
        await self.api.wait_confirmed(update["update_id"])
        await asyncio.wait_for(self.app.update_queue.join(), timeout=5)

    async def link(self, user: dict[str, Any], login: str) -> Call:
        """Tie this Telegram user to a directory account, as an eRun's code does."""
        code = self.store.accounts.invite(login, self.clock.now)
        return await self.ask(user, f"/connexion {code}")


def bot_settings(api: FakeBotApi, **extra: Any) -> Settings:
    """Settings pointing the bot at the fake Bot API (no database: the store is given)."""
    return load_settings(
        telegram_token=FAKE_TOKEN, telegram_api_url=api.base_url, database_url="sqlite://", **extra
    )


@contextlib.asynccontextmanager
async def running_bot(store: Store, assistant: Assistant, clock: Clock) -> AsyncIterator[Bot]:
    """The production configuration (AIORateLimiter included) polling the fake Bot API."""
    async with FakeBotApi() as api:
        flood_clock = FloodClock()
        application = build_application(
            bot_settings(api), assistant, flood_guard=FloodGuard(clock=flood_clock)
        )
        async with polling_session(application):
            yield Bot(api, application, store, assistant, clock, flood_clock)


def menu_of(commands: list[dict[str, str]]) -> list[tuple[str, str]]:
    """A menu as sent to setMyCommands: (command, description) pairs, in order."""
    return [(command["command"], command["description"]) for command in commands]


def table_menu(menu: Menu) -> list[tuple[str, str]]:
    """The menu as the core's command table defines it, in the same shape."""
    return [(command.name, command.description) for command in menu_commands(menu)]


def keyboard(call: Call) -> list[list[dict[str, str]]]:
    """The inline keyboard sent with a message, row by row."""
    return (call.params.get("reply_markup") or {}).get("inline_keyboard") or []


def labels(call: Call) -> list[str]:
    """The labels of the buttons sent with a message, as the user reads them."""
    return [button["text"] for row in keyboard(call) for button in row]


# -- the command line --------------------------------------------------------------------------


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "WEBHOOK_", "DATABASE_", "PORT"))
    }
    env["PYTHONPATH"] = str(ROOT)
    # No DATABASE_URL: the embedded default, assistant-rentree.db in tmp_path (the cwd), which
    # migrates itself; a DATABASE_URL would have to be migrated first (`db upgrade`).
    env.update(values)
    return env


async def start_cli(tmp_path: Path, command: str, **env: str) -> asyncio.subprocess.Process:
    """`python -m bot COMMAND` with that environment, in a temporary folder."""
    # cwd is a temporary folder so that a developer's .env does not leak into the test.
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        command,
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@contextlib.asynccontextmanager
async def running_cli(
    tmp_path: Path, command: str, **env: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A `python -m bot COMMAND` subprocess, killed on the way out if a test left it running."""
    process = await start_cli(tmp_path, command, **env)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def stop_with_sigterm(process: asyncio.subprocess.Process) -> str:
    """Send SIGTERM as a process manager would; returns what the process wrote on stderr."""
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    return stderr.decode()
