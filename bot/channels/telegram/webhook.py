"""Telegram's side of the production web server (bot.web): the webhook route, checking the
secret, then the body, before an update reaches PTB's queue; the PTB application's start and
stop as the web app's lifespan; the webhook's registration once the server listens.

PTB's own webhook server answers 500 to an empty body, malformed JSON or bad UTF-8 (it decodes
before it validates) and logs the whole body at DEBUG. This route answers 403 without the
secret, 413 past 1 MB, 400 to anything that is not an update, and logs only reasons. It
follows PTB's « custom webhook » pattern: updates go into `Application.update_queue`; the
Application is started and stopped as usual (pending updates are processed on stop).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Lifespan
from telegram import Update
from telegram.ext import Application, ExtBot

from bot.web.metrics import Metrics, Rejection
from bot.web.server import WebContext, create_app

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram's updates are a few kilobytes; anything much larger is not one (413).
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class WebhookOptions:
    """What the server listens on and registers with Telegram."""

    listen: str
    port: int
    url_path: str
    webhook_url: str
    # Kept out of repr(): options may end up in a log line or a traceback.
    secret_token: str = field(repr=False)


class BadUpdate(ValueError):
    """A request body that is not a Telegram update (the reason is for the log, in English)."""


def parse_update(body: bytes, bot: ExtBot[Any]) -> Update:
    """The update a request body holds, or BadUpdate: empty, not UTF-8, not JSON, not an
    object with an integer update_id, or refused by PTB."""
    if not body.strip():
        raise BadUpdate("empty body")
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadUpdate("body is not UTF-8") from None
    except json.JSONDecodeError as error:
        raise BadUpdate(f"body is not JSON ({error.msg} at {error.pos})") from None
    if not isinstance(data, dict) or type(data.get("update_id")) is not int:
        raise BadUpdate("body is not an update (no integer update_id)")
    try:
        update = Update.de_json(data, bot)
    except Exception as error:  # PTB refuses a malformed field: the sender's fault, not ours
        reason = f"update {data['update_id']} refused by PTB ({type(error).__name__})"
        raise BadUpdate(reason) from None
    missing = _missing_part(update)
    if missing:
        raise BadUpdate(f"update {update.update_id} has no {missing}")
    return update


def _missing_part(update: Update) -> str | None:
    """What the handlers rely on and PTB does not insist on (it builds a message without its
    chat): a message's chat and id, a button press's sender and id."""
    message = update.message or update.edited_message
    if message is not None and (message.chat is None or message.message_id is None):
        return "message chat or id"
    query = update.callback_query
    if query is not None and (query.from_user is None or not query.id):
        return "callback query sender or id"
    return None


# -- the route ------------------------------------------------------------------------------


def webhook_app(
    ptb: Application,
    options: WebhookOptions,
    engine: Engine,
    metrics: Metrics,
    oauth_callback: BaseRoute | None = None,
) -> Starlette:
    """The production web app with Telegram's webhook in it, running `ptb` in its lifespan
    (and the ENT's sign-in callback, with the ENT's directory)."""
    routes = webhook_routes(ptb, options, metrics)
    lifespan = ptb_lifespan(ptb)
    return create_app(WebContext(engine, metrics, routes, lifespan, oauth_callback))


def webhook_routes(ptb: Application, options: WebhookOptions, metrics: Metrics) -> list[BaseRoute]:
    """POST on the webhook's path (a trailing slash is the same path)."""
    path = "/" + options.url_path.strip("/")
    endpoint = _receiver(ptb, options.secret_token.encode(), metrics)
    table: list[BaseRoute] = [Route(path, endpoint, methods=["POST"])]
    if path != "/":
        table.append(Route(path + "/", endpoint, methods=["POST"]))
    return table


def _answer(status: HTTPStatus) -> JSONResponse:
    return JSONResponse({"ok": status == HTTPStatus.OK}, status_code=status)


def _receiver(ptb: Application, secret: bytes, metrics: Metrics) -> Callable[..., Any]:
    """The endpoint: one update from Telegram; 200, 400, 403 or 413."""

    async def receive(request: Request) -> Response:
        """Secret, size, body, in that order; the update queued."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        # Compared in constant time: the answer's timing must not reveal the secret. Checked
        # first: without it, nothing about the body is told or even read.
        if not hmac.compare_digest(given, secret):
            log.info("webhook: refused a request without the right secret")
            metrics.reject(Rejection.SECRET)
            return _answer(HTTPStatus.FORBIDDEN)
        body = await _read_body(request)
        if body is None:
            log.warning("webhook: refused a request body over %d bytes", MAX_BODY)
            metrics.reject(Rejection.TOO_LARGE)
            return _answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        try:
            update = parse_update(body, ptb.bot)
        except BadUpdate as error:
            log.warning("webhook: refused a request: %s", error)
            metrics.reject(Rejection.BAD_BODY)
            return _answer(HTTPStatus.BAD_REQUEST)
        if isinstance(ptb.bot, ExtBot):
            ptb.bot.insert_callback_data(update)
        # Answered at once: the update is handled after the reply, in PTB's order per user.
        await ptb.update_queue.put(update)
        return _answer(HTTPStatus.OK)

    return receive


async def _read_body(request: Request) -> bytes | None:
    """The body, or None past MAX_BODY: refused on its announced length, else read no further
    than the limit (a client may lie, or send it in chunks)."""
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return b""
    return b"".join(chunks)


# -- the PTB application's life inside the web server's ---------------------------------------


def ptb_lifespan(ptb: Application) -> Lifespan[Any]:
    """Initialise and start PTB before the first request; stop it (processing the updates
    accepted) and shut it down after the last, as run_webhook would."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        """PTB runs while the server serves."""
        await ptb.initialize()
        try:
            if ptb.post_init is not None:
                await ptb.post_init(ptb)
            await ptb.start()
            try:
                yield
            finally:
                await ptb.stop()
        finally:
            await ptb.shutdown()
            # post_shutdown stops the core's worker threads.
            if ptb.post_shutdown is not None:
                await ptb.post_shutdown(ptb)

    return lifespan


async def register_webhook(
    ptb: Application, options: WebhookOptions, allowed_updates: list[str]
) -> None:
    """Tell Telegram where to post, with the secret; pending updates are kept."""
    await ptb.bot.set_webhook(
        options.webhook_url,
        secret_token=options.secret_token,
        allowed_updates=allowed_updates,
        drop_pending_updates=False,
    )
