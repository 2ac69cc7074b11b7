"""The production web server (bot.web): /healthz, /metrics after real updates, the webhook's
refusals (403, 400, 413), and JSON logs that say which update and (hashed) user a line is
about, never the token or the secret."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from bot.channels.telegram.fake_bot_api import FAKE_TOKEN, FakeBotApi
from bot.channels.telegram.webhook import MAX_BODY, SECRET_HEADER
from bot.core.assistant import Assistant
from bot.logs import MASK, configure_logging, hash_user, remove_mask, set_user_key
from bot.settings import load_settings
from bot.storage.store import Store
from tests.support import DIRECTOR, PG_URL, Clock, need_postgres
from tests.telegram_support import labels, running_cli, stop_with_sigterm
from tests.web_support import PUBLIC_URL, SECRET, Webhook, free_port, serving_webhook

FAQ = "comment activer mon compte educonnect"
OFF_TOPIC = "quelle est la recette de la tarte au sucre"


@pytest_asyncio.fixture
async def webhook(store: Store, assistant: Assistant) -> AsyncIterator[Webhook]:
    async with serving_webhook(assistant, store.engine) as running:
        yield running


def _figures(page: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def _value(figures: dict[Any, float], name: str, **labels: str) -> float:
    return figures.get((name, frozenset(labels.items())), 0.0)


async def _ask(webhook: Webhook, client: httpx.AsyncClient, user: dict[str, Any], text: str):  # type: ignore[no-untyped-def]
    """Deliver a text and return the bot's first message to that user after it."""
    mark = webhook.api.mark()
    update = webhook.api.send_text(user, text)
    assert await webhook.deliver(client, update) == 200
    return await webhook.api.wait_call("sendMessage", chat_id=user["id"], after=mark)


async def _proposal(webhook: Webhook, client: httpx.AsyncClient, user: dict[str, Any], text: str):  # type: ignore[no-untyped-def]
    """Deliver an order; the message that offers to confirm it (« Annuler » among its buttons)."""
    mark = webhook.api.mark()
    assert await webhook.deliver(client, webhook.api.send_text(user, text)) == 200
    return await webhook.api.wait_call(
        "sendMessage", chat_id=user["id"], after=mark, where=lambda c: "Annuler" in labels(c)
    )


# -- /healthz ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_healthz_is_ok_while_the_database_answers(webhook: Webhook) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{webhook.base}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.asyncio
async def test_healthz_is_503_when_the_database_cannot_be_reached(assistant: Assistant) -> None:
    # Nothing listens on port 1: connecting is refused, as with a database server down.
    unreachable = create_engine("postgresql+psycopg://127.0.0.1:1/test")
    try:
        async with serving_webhook(assistant, unreachable) as webhook, httpx.AsyncClient() as c:
            response = await c.get(f"{webhook.base}/healthz")
            assert response.status_code == 503
            assert response.json() == {"status": "database unreachable"}
            assert "Traceback" not in response.text
            # The webhook itself keeps answering: Telegram's deliveries are not refused.
            parent = webhook.api.user(8101)
            reply = await _ask(webhook, c, parent, FAQ)
            assert "FranceConnect" in reply.params["text"]
    finally:
        unreachable.dispose()


@pytest.mark.asyncio
async def test_healthz_turns_503_when_the_database_is_dropped(assistant: Assistant) -> None:
    need_postgres()
    import psycopg

    name = f"gone_{uuid.uuid4().hex[:10]}"
    admin = PG_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    engine = create_engine(PG_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        async with serving_webhook(assistant, engine) as webhook, httpx.AsyncClient() as client:
            healthz = f"{webhook.base}/healthz"
            assert (await client.get(healthz)).status_code == 200
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            response = await client.get(healthz)
            assert response.status_code == 503
            assert response.json() == {"status": "database unreachable"}
    finally:
        engine.dispose()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- /metrics ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_metrics_count_what_the_core_handled(
    webhook: Webhook, store: Store, clock: Clock
) -> None:
    api = webhook.api
    async with httpx.AsyncClient() as client:
        before = _figures((await client.get(f"{webhook.base}/metrics")).text)
        assert _value(before, "assistant_updates_total", kind="text") == 0

        parent = api.user(8201)
        assert "FranceConnect" in (await _ask(webhook, client, parent, FAQ)).params["text"]
        await _ask(webhook, client, parent, OFF_TOPIC)
        api.mark()
        photo = api.send_media(parent, "photo")
        assert await webhook.deliver(client, photo) == 200

        director = api.user(8202, "Claire", "Martin")
        code = store.accounts.invite(DIRECTOR, clock.now)
        assert (
            "Bienvenue"
            in (await _ask(webhook, client, director, f"/connexion {code}")).params["text"]
        )
        proposal = await _proposal(webhook, client, director, "bloque les parents")
        mark = api.mark()
        press = api.press(director, proposal.result, "Confirmer")
        assert await webhook.deliver(client, press) == 200
        await api.wait_call("editMessageText", chat_id=director["id"], after=mark)
        second = await _proposal(webhook, client, director, "débloque les parents")
        mark = api.mark()
        assert await webhook.deliver(client, api.press(director, second.result, "Annuler")) == 200
        await api.wait_call("editMessageText", chat_id=director["id"], after=mark)

        response = await client.get(f"{webhook.base}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    figures = _figures(response.text)
    # FAQ, off-topic, /connexion, two orders; the photo; two presses.
    assert _value(figures, "assistant_updates_total", kind="text") == 5
    assert _value(figures, "assistant_updates_total", kind="other") == 1
    assert _value(figures, "assistant_updates_total", kind="press") == 2
    assert _value(figures, "assistant_out_of_scope_answers_total") == 1
    assert _value(figures, "assistant_intents_total", intent="out_of_scope") == 1
    assert sum(v for (n, _), v in figures.items() if n == "assistant_intents_total") >= 6
    assert _value(figures, "assistant_action_outcomes_total", outcome="done") == 1
    assert _value(figures, "assistant_action_outcomes_total", outcome="cancelled") == 1
    assert _value(figures, "assistant_action_outcomes_total", outcome="failed") == 0
    assert _value(figures, "assistant_handling_seconds_count") == 8
    assert _value(figures, "assistant_handling_seconds_sum") > 0


# -- the webhook's refusals -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_webhook_answers_403_400_413_and_200_and_counts_refusals(webhook: Webhook) -> None:
    parent = webhook.api.user(8301)
    async with httpx.AsyncClient() as client:
        update = webhook.api.send_text(parent, "bonjour")
        assert await webhook.post(client, update) == 403
        assert await webhook.post(client, update, **{SECRET_HEADER: SECRET + "x"}) == 403
        signed = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
        bad = await client.post(webhook.url, content=b"{not json", headers=signed)
        assert bad.status_code == 400
        padding = "x" * (MAX_BODY + 1)
        huge = json.dumps({"update_id": 1, "padding": padding}).encode()
        assert (await client.post(webhook.url, content=huge, headers=signed)).status_code == 413

        async def streamed() -> AsyncIterator[bytes]:
            """A body without Content-Length, larger than the limit: refused all the same."""
            for _ in range(MAX_BODY // 65536 + 2):
                yield b" " * 65536

        chunked = await client.post(webhook.url, content=streamed(), headers=signed)
        assert chunked.status_code == 413
        # Without the secret, a huge body is not even read: 403.
        assert (await client.post(webhook.url, content=huge)).status_code == 403
        reply = await _ask(webhook, client, parent, FAQ)
        assert "FranceConnect" in reply.params["text"]
        figures = _figures((await client.get(f"{webhook.base}/metrics")).text)
    rejected = "assistant_webhook_rejected_requests_total"
    assert _value(figures, rejected, reason="secret") == 3
    assert _value(figures, rejected, reason="bad_body") == 1
    assert _value(figures, rejected, reason="too_large") == 2
    # None of the refused requests reached the core.
    assert _value(figures, "assistant_updates_total", kind="text") == 1


@pytest.mark.asyncio
async def test_unknown_paths_and_methods_are_refused(webhook: Webhook) -> None:
    async with httpx.AsyncClient() as client:
        assert (await client.get(webhook.url)).status_code == 405
        assert (await client.post(f"{webhook.base}/healthz")).status_code == 405
        assert (await client.post(f"{webhook.base}/oauth/callback")).status_code == 404


# -- JSON logs --------------------------------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """LOG_FORMAT=json at DEBUG, as `python -m bot webhook` configures it, written to a buffer
    (the root's console handler); the process restored afterwards."""
    root = logging.getLogger()
    buffer = io.StringIO()
    console = logging.StreamHandler(buffer)
    names = ("httpx", "httpcore", "uvicorn.access")
    levels = {name: logging.getLogger(name).level for name in names}
    root_level = root.level
    root.addHandler(console)
    settings = load_settings(
        telegram_token=FAKE_TOKEN,
        webhook_secret=SECRET,
        log_level="DEBUG",
        log_format="json",
        database_url="sqlite://",
    )
    configure_logging(settings)
    try:
        yield buffer
    finally:
        root.removeHandler(console)
        root.setLevel(root_level)
        remove_mask()
        set_user_key(None)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.mark.asyncio
async def test_json_log_lines_carry_the_update_and_hashed_user_never_a_secret(
    webhook: Webhook, json_log: io.StringIO
) -> None:
    parent = webhook.api.user(8401)
    async with httpx.AsyncClient() as client:
        update = webhook.api.send_text(parent, FAQ)
        assert await webhook.deliver(client, update) == 200
        await webhook.api.wait_call("sendMessage", chat_id=parent["id"])
        await client.get(f"{webhook.base}/healthz?{SECRET}")
        assert await webhook.post(client, update, **{SECRET_HEADER: "wrong"}) == 403
    text = json_log.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines, "nothing was logged"
    for line in lines:
        assert {"time", "level", "logger", "message", "update_id", "user"} <= line.keys()
        assert line["time"].endswith("Z")
    about = [line for line in lines if line["update_id"] == update["update_id"]]
    # The Bot API request that answered it (httpx, at DEBUG) is one of them, token masked.
    answered = [line for line in about if line["logger"] == "httpx"]
    assert answered, [line["logger"] for line in about]
    assert MASK in answered[0]["message"]
    pseudonym = hash_user(parent["id"])
    assert len(pseudonym) == 12
    assert {line["user"] for line in about} == {pseudonym}
    # uvicorn's access log goes through the same formatter, without address or query string.
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any(line["message"] == "GET /healthz 200" for line in access), access
    assert not [line for line in access if "127.0.0.1" in line["message"]], access
    # (PTB's own DEBUG lines quote whole updates, Telegram ids included: production runs at
    # INFO. Secrets are masked at every level.)
    for secret in (FAKE_TOKEN, FAKE_TOKEN.split(":")[1], SECRET):
        assert secret not in text, secret


@pytest.mark.asyncio
async def test_webhook_command_writes_json_lines_and_serves_health_and_metrics(
    tmp_path: Any,
) -> None:
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
            LOG_FORMAT="json",
        ) as process,
    ):
        await api.wait_call("setWebhook", timeout=60)
        base = f"http://127.0.0.1:{port}"
        parent = api.user(8501)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{base}/healthz")).json() == {"status": "ok"}
            update = api.send_text(parent, FAQ)
            posted = await client.post(
                f"{base}/telegram", json=update, headers={SECRET_HEADER: SECRET}
            )
            assert posted.status_code == 200
            await api.wait_call("sendMessage", chat_id=parent["id"], timeout=30)
            page = (await client.get(f"{base}/metrics")).text
        stderr = await stop_with_sigterm(process)
    assert process.returncode == 0, stderr
    assert _value(_figures(page), "assistant_updates_total", kind="text") == 1
    lines = [json.loads(line) for line in stderr.splitlines()]
    messages = [line["message"] for line in lines]
    assert any(m.startswith("web server: listening") for m in messages), messages
    assert all(line["time"].endswith("Z") for line in lines)
    for secret in (FAKE_TOKEN, FAKE_TOKEN.split(":")[1], SECRET):
        assert secret not in stderr
