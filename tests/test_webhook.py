"""Webhook mode: our web server (bot.web: secret, then body checked) in front of the real PTB
stack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from bot.channels.telegram.app import ALLOWED_UPDATES, webhook_options
from bot.channels.telegram.fake_bot_api import FAKE_TOKEN, FakeBotApi
from bot.channels.telegram.webhook import SECRET_HEADER
from bot.core.assistant import Assistant
from bot.core.messages import APOLOGY
from bot.settings import SettingsError, load_settings
from bot.storage.store import Store
from tests.telegram_support import running_cli, start_cli, stop_with_sigterm
from tests.web_support import PUBLIC_URL, SECRET, Webhook, free_port, serving_webhook


@pytest_asyncio.fixture
async def webhook(store: Store, assistant: Assistant) -> AsyncIterator[Webhook]:
    async with serving_webhook(assistant, store.engine) as running:
        yield running


@pytest.mark.asyncio
async def test_webhook_is_registered_with_its_secret(webhook: Webhook) -> None:
    call = await webhook.api.wait_call("setWebhook")
    assert call.params["url"] == PUBLIC_URL
    assert call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == ALLOWED_UPDATES


@pytest.mark.asyncio
async def test_update_with_the_secret_is_processed(webhook: Webhook) -> None:
    parent = webhook.api.user(8001)
    update = webhook.api.send_text(parent, "comment activer mon compte educonnect")
    async with httpx.AsyncClient() as client:
        assert await webhook.post(client, update, **{SECRET_HEADER: SECRET}) == 200
    reply = await webhook.api.wait_call("sendMessage", chat_id=parent["id"])
    assert "FranceConnect" in reply.params["text"]


@pytest.mark.asyncio
@pytest.mark.parametrize("headers", [{}, {SECRET_HEADER: "wrong-secret"}])
async def test_update_without_the_right_secret_is_refused_unprocessed(
    webhook: Webhook, headers: dict[str, str]
) -> None:
    parent = webhook.api.user(8002)
    update = webhook.api.send_text(parent, "bonjour")
    async with httpx.AsyncClient() as client:
        assert await webhook.post(client, update, **headers) == 403
    # Had the update been queued, join() would wait for it to be answered.
    await asyncio.wait_for(webhook.app.update_queue.join(), timeout=5)
    assert not webhook.api.calls_of("sendMessage", chat_id=parent["id"])


BAD_BODIES = {
    "empty": b"",
    "blank": b"  \n",
    "truncated JSON": b'{"update_id": 1, "message": {',
    "not JSON": b"update_id=1",
    "bad UTF-8": b'{"update_id": 1, "x": "\xff\xfe"}',
    "UTF-16": '{"update_id": 1}'.encode("utf-16"),
    "a list": b"[1, 2]",
    "a string": b'"bonjour"',
    "null": b"null",
    "no update_id": b'{"message": {}}',
    "update_id as text": b'{"update_id": "12"}',
    "message without chat": b'{"update_id": 12, "message": {"message_id": 1, "date": 0}}',
}


@pytest.mark.asyncio
@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_a_body_that_is_not_an_update_gets_400_and_the_bot_keeps_serving(
    webhook: Webhook, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            webhook.url,
            content=body,
            headers={SECRET_HEADER: SECRET, "Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        # Without the secret, nothing about the body is told: 403 first.
        unsigned = await client.post(webhook.url, content=body)
        assert unsigned.status_code == 403
        # The next real update is answered as usual.
        parent = webhook.api.user(8010)
        update = webhook.api.send_text(parent, "comment activer mon compte educonnect")
        assert await webhook.post(client, update, **{SECRET_HEADER: SECRET}) == 200
    reply = await webhook.api.wait_call("sendMessage", chat_id=parent["id"])
    assert "FranceConnect" in reply.params["text"]
    await asyncio.wait_for(webhook.app.update_queue.join(), timeout=5)
    assert len(webhook.api.calls_of("sendMessage")) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def _on_behalf_of_a_channel(api: FakeBotApi, text: str) -> dict[str, Any]:
    """A group message sent as a channel: Telegram gives `sender_chat` and no `from`."""
    group = api.group_chat(-1009876543210, "Parents et enseignants")
    update = api.send_text(api.user(1), text, chat=group)
    del update["message"]["from"]
    update["message"]["sender_chat"] = {"id": -1001112223334, "type": "channel", "title": "École"}
    return update


@pytest.mark.asyncio
async def test_a_message_sent_as_a_channel_is_answered_without_an_apology(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    bot_name = webhook.api.bot_user["username"]
    update = _on_behalf_of_a_channel(
        webhook.api, f"@{bot_name} comment activer mon compte educonnect"
    )
    group_id = update["message"]["chat"]["id"]
    async with httpx.AsyncClient() as client:
        assert await webhook.post(client, update, **{SECRET_HEADER: SECRET}) == 200
    reply = await webhook.api.wait_call("sendMessage", chat_id=group_id)
    assert "FranceConnect" in reply.params["text"]
    assert reply.params["text"] != APOLOGY
    await asyncio.wait_for(webhook.app.update_queue.join(), timeout=5)
    assert [c.params["text"] for c in webhook.api.calls_of("sendMessage")] == [
        reply.params["text"]
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.asyncio
async def test_a_message_without_any_sender_is_ignored_quietly(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    update = _on_behalf_of_a_channel(webhook.api, "/aide")
    del update["message"]["sender_chat"]
    async with httpx.AsyncClient() as client:
        assert await webhook.post(client, update, **{SECRET_HEADER: SECRET}) == 200
    await asyncio.wait_for(webhook.app.update_queue.join(), timeout=5)
    assert not webhook.api.calls_of("sendMessage")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_webhook_refuses_to_start_without_a_secret_or_url() -> None:
    base = {"telegram_token": FAKE_TOKEN, "database_url": "sqlite://"}
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET manquant"):
        webhook_options(load_settings(**base, webhook_url=PUBLIC_URL, webhook_secret=""))
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET mal formé"):
        webhook_options(load_settings(**base, webhook_url=PUBLIC_URL, webhook_secret="a b"))
    with pytest.raises(SettingsError, match="WEBHOOK_URL manquant"):
        webhook_options(load_settings(**base, webhook_url="", webhook_secret=SECRET))
    options = webhook_options(
        load_settings(**base, webhook_url=PUBLIC_URL, webhook_secret=SECRET, port=8443)
    )
    assert (options.listen, options.port, options.url_path) == ("0.0.0.0", 8443, "telegram")


@pytest.mark.asyncio
async def test_webhook_command_without_secret_exits_with_one_french_line(tmp_path: Any) -> None:
    process = await start_cli(
        tmp_path, "webhook", TELEGRAM_TOKEN=FAKE_TOKEN, WEBHOOK_URL=PUBLIC_URL
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("WEBHOOK_SECRET manquant"), lines


async def _post_when_listening(url: str, update: dict[str, Any], headers: dict[str, str]) -> int:
    # setWebhook is called once the server listens; retried anyway, should a start be slow.
    async with httpx.AsyncClient() as client:
        async with asyncio.timeout(30):
            while True:
                try:
                    return (await client.post(url, json=update, headers=headers)).status_code
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_webhook_command_serves_then_stops_gracefully_on_sigterm(tmp_path: Any) -> None:
    port = free_port()
    async with (
        FakeBotApi() as api,
        running_cli(
            tmp_path,
            "webhook",
            TELEGRAM_TOKEN=FAKE_TOKEN,
            TELEGRAM_API_URL=api.base_url,
            WEBHOOK_URL=PUBLIC_URL,
            WEBHOOK_SECRET=SECRET,
            PORT=str(port),
        ) as process,
    ):
        registered = await api.wait_call("setWebhook", timeout=60)
        assert registered.params["secret_token"] == SECRET
        url = f"http://127.0.0.1:{port}/telegram"
        parent = api.user(8003)

        refused = api.send_text(parent, "bonjour")
        assert await _post_when_listening(url, refused, {}) == 403
        update = api.send_text(parent, "comment activer mon compte educonnect")
        assert await _post_when_listening(url, update, {SECRET_HEADER: SECRET}) == 200
        reply = await api.wait_call("sendMessage", chat_id=parent["id"], timeout=30)
        assert "FranceConnect" in reply.params["text"]

        stderr = await stop_with_sigterm(process)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    # Only the update that carried the secret was answered.
    assert len(api.calls_of("sendMessage", chat_id=parent["id"])) == 1
