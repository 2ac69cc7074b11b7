"""The production web server (bot.web) in front of the real PTB stack and the fake Bot API,
for the webhook and web-server tests."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
from sqlalchemy import Engine
from telegram.ext import Application

from bot.channels.telegram.app import ALLOWED_UPDATES, build_application, webhook_options
from bot.channels.telegram.fake_bot_api import FakeBotApi
from bot.channels.telegram.webhook import SECRET_HEADER, register_webhook, webhook_app
from bot.core.assistant import Assistant
from bot.web.metrics import Metrics
from bot.web.serve import web_server
from tests.telegram_support import bot_settings

SECRET = "s3cret-Token_for-tests"
PUBLIC_URL = "https://assistant.example.org/telegram"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Webhook:
    """The running server and the fake Telegram around it."""

    api: FakeBotApi
    app: Application
    metrics: Metrics
    base: str

    @property
    def url(self) -> str:
        """Where Telegram posts (the path of PUBLIC_URL)."""
        return f"{self.base}/telegram"

    async def post(self, client: httpx.AsyncClient, update: dict[str, Any], **headers: str) -> int:
        """POST an update as JSON; the status code."""
        response = await client.post(self.url, json=update, headers=headers)
        return response.status_code

    async def deliver(self, client: httpx.AsyncClient, update: dict[str, Any]) -> int:
        """POST an update with the secret, as Telegram does."""
        return await self.post(client, update, **{SECRET_HEADER: SECRET})


@contextlib.asynccontextmanager
async def serving_webhook(
    assistant: Assistant, engine: Engine, **settings: Any
) -> AsyncIterator[Webhook]:
    """bot.web on a free loopback port, its lifespan running PTB against the fake Bot API."""
    async with FakeBotApi() as api:
        config = bot_settings(api, webhook_url=PUBLIC_URL, webhook_secret=SECRET, **settings)
        # The test stays on loopback, on a port the system picks; production listens on every
        # interface, on $PORT.
        options = replace(webhook_options(config), listen="127.0.0.1", port=0)
        metrics = Metrics()
        application = build_application(config, assistant, observer=metrics.observe)
        web = webhook_app(application, options, engine, metrics)

        async def register() -> None:
            """Once listening: the webhook registered with the fake Telegram."""
            await register_webhook(application, options, ALLOWED_UPDATES)

        async with web_server(web, options.listen, options.port, on_listening=register) as port:
            yield Webhook(api, application, metrics, f"http://127.0.0.1:{port}")
