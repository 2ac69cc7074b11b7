"""Secrets stay out of the logs: at LOG_LEVEL=DEBUG the bot token, the webhook secret and the
link codes of /connexion never appear, in our loggers, PTB's or httpx's, tracebacks included."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.channels.telegram.fake_bot_api import FAKE_TOKEN, FakeBotApi
from bot.core.assistant import Assistant
from bot.logs import MASK, SecretMask, configure_logging, remove_mask
from bot.settings import load_settings
from bot.storage.store import Store
from tests.support import DIRECTOR, ERUN, ROOT, Clock
from tests.telegram_support import running_bot, stop_with_sigterm

SECRET = "s3cret-Token_for-tests"
NOISY = ("httpx", "httpcore")


@pytest.fixture
def debug_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """LOG_LEVEL=DEBUG as the front ends configure it (bot.logs), undone afterwards."""
    levels = {name: logging.getLogger(name).level for name in NOISY}
    caplog.set_level(logging.DEBUG)
    settings = load_settings(
        telegram_token=FAKE_TOKEN,
        webhook_secret=SECRET,
        log_level="DEBUG",
        database_url="sqlite://",
    )
    configure_logging(settings)
    try:
        yield caplog
    finally:
        remove_mask()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as a handler would write it, tracebacks included."""
    formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


@pytest.mark.asyncio
async def test_debug_logs_of_the_telegram_stack_hold_no_token_and_no_code(
    store: Store, assistant: Assistant, clock: Clock, debug_logging: pytest.LogCaptureFixture
) -> None:
    code = store.accounts.invite(DIRECTOR, clock.now)
    other = store.accounts.invite(ERUN, clock.now)
    typed_other = f"{other[:4].lower()}-{other[4:].lower()}"
    async with running_bot(store, assistant, clock) as bot:
        director = bot.api.user(5001, "Claire")
        welcome = await bot.ask(director, f"/connexion {code}")
        assert "Bienvenue" in welcome.params["text"]
        erun = bot.api.user(5002, "Marc")
        assert "Bienvenue" in (await bot.ask(erun, f"/connexion {typed_other}")).params["text"]
        # A code pasted alone is no command: answered like any text, logged like any text.
        await bot.ask(bot.api.user(5003), other)
    logged = _everything_logged(debug_logging)
    # It really ran at DEBUG, through PTB and httpx, and the updates' texts were logged.
    names = {record.name.split(".")[0] for record in debug_logging.records}
    assert {"telegram", "httpx"} <= names, names
    assert f"/connexion {MASK}" in logged
    for secret in (FAKE_TOKEN, FAKE_TOKEN.split(":")[1], code, other, typed_other):
        assert secret not in logged, secret


async def _cli(tmp_path: Path, *args: str, **env: str) -> asyncio.subprocess.Process:
    """`python -m bot ARGS` in `tmp_path` on the embedded database of that folder (no
    DATABASE_URL: the README's default, migrated and seeded with the demo school)."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "WEBHOOK_", "DATABASE_", "LOG_", "PORT"))
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.asyncio
async def test_run_at_debug_level_logs_neither_the_token_nor_a_code(tmp_path: Path) -> None:
    invite = await _cli(tmp_path, "accounts", "invite", DIRECTOR)
    out, err = await asyncio.wait_for(invite.communicate(), timeout=60)
    assert invite.returncode == 0, err.decode()
    code = out.decode().split()[0]
    async with FakeBotApi() as api:
        process = await _cli(
            tmp_path,
            "run",
            TELEGRAM_TOKEN=FAKE_TOKEN,
            TELEGRAM_API_URL=api.base_url,
            WEBHOOK_SECRET=SECRET,
            LOG_LEVEL="DEBUG",
        )
        try:
            await api.wait_call("getUpdates", timeout=60)
            director = api.user(5101, "Claire")
            api.send_text(director, f"/connexion {code}")
            welcome = await api.wait_call("sendMessage", chat_id=director["id"], timeout=30)
            assert "Bienvenue" in welcome.params["text"]
            stderr = await stop_with_sigterm(process)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, stderr[-3000:]
    # The log is there, at DEBUG, with the update that carried the code, masked.
    assert "DEBUG telegram" in stderr and "httpx: HTTP Request" in stderr
    assert f"/connexion {MASK}" in stderr
    for secret in (FAKE_TOKEN, FAKE_TOKEN.split(":")[1], SECRET, code):
        assert secret not in stderr, secret


def test_a_traceback_quoting_the_token_is_masked(debug_logging: pytest.LogCaptureFixture) -> None:
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{FAKE_TOKEN}/getMe failed")
    except RuntimeError:
        logging.getLogger("bot.test").exception("webhook secret was %s", SECRET)
    logged = _everything_logged(debug_logging)
    assert f"webhook secret was {MASK}" in logged
    assert f"RuntimeError: POST https://api.telegram.org/bot{MASK}/getMe failed" in logged
    assert FAKE_TOKEN not in logged and SECRET not in logged


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/connexion K7M2P9QX", f"/connexion {MASK}"),
        (
            "'text': '/connexion@assistant_bot k7m2 p9qx'",
            f"'text': '/connexion@assistant_bot {MASK}'",
        ),
        ("code K7M2-P9QX collé seul", f"code {MASK} collé seul"),
        ("k7m2p9qx", MASK),
        ("another bot 987654321:" + "B" * 35, f"another bot {MASK}"),
        # Ordinary words, numbers and our own ids stay readable.
        ("accepter les parents", "accepter les parents"),
        ("update 12345678 failed", "update 12345678 failed"),
        ("LOG_LEVEL=DEBUG", "LOG_LEVEL=DEBUG"),
    ],
)
def test_the_mask_hides_codes_and_tokens_and_leaves_the_rest(text: str, shown: str) -> None:
    assert SecretMask().mask(text) == shown


def test_settings_never_show_their_secrets() -> None:
    settings = load_settings(
        telegram_token=FAKE_TOKEN, webhook_secret=SECRET, database_url="sqlite://"
    )
    shown = f"{settings!r} {settings} {settings.model_dump()}"
    assert FAKE_TOKEN not in shown and SECRET not in shown
    assert settings.require_telegram_token() == FAKE_TOKEN
    assert sorted(settings.secrets()) == sorted([FAKE_TOKEN, SECRET])
