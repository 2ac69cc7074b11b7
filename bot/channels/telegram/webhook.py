"""The webhook HTTP server: Telegram's POSTs are checked (secret, then body) before an update
reaches PTB's queue.

PTB's own webhook server answers 500 to an empty body, malformed JSON or bad UTF-8 (it decodes
before it validates) and logs the whole body at DEBUG. This one answers 400 to anything that
is not an update, 403 without the secret, and logs only update ids. It follows PTB's « custom
webhook » pattern: updates go into `Application.update_queue`, the Application is started and
stopped as usual (pending updates are processed on stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import tornado.web
from telegram import Update
from telegram.ext import Application, ExtBot
from tornado.httpserver import HTTPServer

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram's updates are a few kilobytes; anything much larger is not one (tornado's default
# would buffer 100 MB per request).
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


class UpdateReceiver(tornado.web.RequestHandler):
    """POST /<path>: one update from Telegram."""

    SUPPORTED_METHODS = ("POST",)

    def initialize(self, ptb: Application, secret: str) -> None:
        """Tornado's per-request set-up: what every request needs."""
        self.ptb = ptb
        self.secret = secret

    async def post(self) -> None:
        """Check the secret, then the body; queue the update; 200, 400 or 403."""
        given = self.request.headers.get(SECRET_HEADER, "")
        # Compared in constant time: the answer's timing must not reveal the secret.
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            log.info("webhook: refused a request without the right secret")
            self._answer(HTTPStatus.FORBIDDEN)
            return
        try:
            update = parse_update(self.request.body, self.ptb.bot)
        except BadUpdate as error:
            log.warning("webhook: refused a request: %s", error)
            self._answer(HTTPStatus.BAD_REQUEST)
            return
        bot = self.ptb.bot
        if isinstance(bot, ExtBot):
            bot.insert_callback_data(update)
        await self.ptb.update_queue.put(update)
        self._answer(HTTPStatus.OK)

    def _answer(self, status: HTTPStatus) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"ok": status == HTTPStatus.OK}))


def web_application(application: Application, options: WebhookOptions) -> tornado.web.Application:
    """The tornado routes: the webhook path only (anything else is 404)."""
    path = options.url_path.strip("/")
    pattern = rf"/{re.escape(path)}/?" if path else r"/"
    target = {"ptb": application, "secret": options.secret_token}
    # No access log line per request: one per message at INFO is noise; refusals are logged
    # by the handler, with their reason.
    return tornado.web.Application(
        [(pattern, UpdateReceiver, target)], log_function=lambda handler: None
    )


@contextlib.asynccontextmanager
async def webhook_session(
    application: Application, options: WebhookOptions, *, allowed_updates: list[str]
) -> AsyncIterator[HTTPServer]:
    """Serve the webhook inside a running event loop: initialize, post_init, listen, register
    the webhook with Telegram, start; on exit stop listening, process what was accepted, shut
    down."""
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        server = HTTPServer(web_application(application, options), max_body_size=MAX_BODY)
        server.listen(options.port, address=options.listen)
        try:
            # Listening before registering: Telegram's first delivery finds the server up.
            await application.bot.set_webhook(
                options.webhook_url,
                secret_token=options.secret_token,
                allowed_updates=allowed_updates,
                drop_pending_updates=False,
            )
            await application.start()
            try:
                yield server
            finally:
                server.stop()
                await application.stop()
        finally:
            server.stop()
            await server.close_all_connections()
    finally:
        await application.shutdown()


async def serve_until_signalled(
    application: Application, options: WebhookOptions, *, allowed_updates: list[str]
) -> None:
    """The webhook server until SIGINT or SIGTERM; updates already accepted are processed
    before returning, and Telegram redelivers those it could not deliver meanwhile."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with webhook_session(application, options, allowed_updates=allowed_updates):
            log.info("webhook: listening on %s:%s", options.listen, options.port)
            await stop.wait()
            log.info("webhook: stopping")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
