"""Telegram front end: the PTB application wired to the transport-free core, and its two ways
of receiving updates (long polling, webhook)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from starlette.routing import BaseRoute
from telegram import Bot, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    Defaults,
    MessageHandler,
    filters,
)

from bot.app import App, settle_heap, start
from bot.channels.telegram.adapter import Core, Observer, TelegramAdapter
from bot.channels.telegram.flow import FloodGuard, PerUserUpdateProcessor
from bot.channels.telegram.incoming import ADDRESSED, UNSUPPORTED_CONTENT
from bot.channels.telegram.menus import command_names, set_public_menu
from bot.channels.telegram.ticker import Ticker
from bot.channels.telegram.webhook import WebhookOptions, register_webhook, webhook_app
from bot.core.assistant import Assistant
from bot.core.job_runner import JobRunner
from bot.settings import Settings, SettingsError
from bot.web.metrics import Metrics
from bot.web.serve import serve_until_signalled

# Only what the handlers read: Telegram then does not even send the rest (member updates…).
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]


def base_urls(api_url: str) -> tuple[str, str]:
    """The Bot API base URL and the matching file URL (…/bot → …/file/bot)."""
    api_url = api_url.rstrip("/")
    if api_url.endswith("/bot"):
        return api_url, api_url[: -len("/bot")] + "/file/bot"
    return api_url, api_url + "/file/bot"


def build_application(
    settings: Settings,
    assistant: Core,
    *,
    rate_limiter: bool = True,
    flood_guard: FloodGuard | None = None,
    max_concurrent_updates: int = 64,
    observer: Observer | None = None,
    core_workers: int | None = None,
    jobs: JobRunner | None = None,
) -> Application:
    """The PTB Application with every handler wired to the core (token checked here);
    `core_workers` threads run the core (default: CORE_WORKERS, one on SQLite)."""
    token = settings.require_telegram_token()
    base_url, base_file_url = base_urls(settings.telegram_api_url)
    # SQLite takes one writer at a time (and an in-memory one is a single shared connection):
    # one worker thread, still off the event loop.
    sqlite = settings.database_url.startswith("sqlite")
    workers = core_workers or (1 if sqlite else settings.core_workers)
    adapter = TelegramAdapter(
        assistant, flood_guard or FloodGuard(), workers=workers, observer=observer
    )
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(base_file_url)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .concurrent_updates(PerUserUpdateProcessor(max_concurrent_updates))
        .post_init(set_public_menu)
        .post_shutdown(adapter.shutdown)
    )
    if rate_limiter:
        # Spreads sends under Telegram's limits and retries once on RetryAfter.
        builder.rate_limiter(AIORateLimiter(max_retries=1))
    application = builder.build()

    new_message = filters.UpdateType.MESSAGE
    # Group -1 runs first and can stop everything else (ApplicationHandlerStop).
    application.add_handlers(
        [
            MessageHandler(
                filters.UpdateType.MESSAGES & (ADDRESSED | filters.COMMAND), adapter.guard_floods
            ),
            CallbackQueryHandler(adapter.guard_floods),
        ],
        group=-1,
    )
    application.add_handlers(
        [
            # First: an edited text must not be taken for a new message.
            MessageHandler(filters.UpdateType.EDITED_MESSAGE & ADDRESSED, adapter.on_unsupported),
            CommandHandler(command_names(), adapter.on_text, filters=new_message),
            MessageHandler(new_message & filters.TEXT & ADDRESSED, adapter.on_text),
            MessageHandler(new_message & UNSUPPORTED_CONTENT & ADDRESSED, adapter.on_unsupported),
            CallbackQueryHandler(adapter.on_press),
        ]
    )
    application.add_error_handler(adapter.on_error)
    runner = jobs
    if runner is None and isinstance(assistant, Assistant):
        runner = JobRunner(assistant.engine, assistant.clock)
    if runner is not None and application.job_queue is not None:
        # Scheduled jobs, run in the core's threads (one on SQLite, shared with messages).
        chores = assistant.housekeeping if isinstance(assistant, Assistant) else None
        ticker = Ticker(runner, adapter._in_worker, chores)
        adapter.run_due_jobs = ticker.tick
        application.job_queue.run_repeating(
            ticker, interval=settings.job_tick_seconds, name="scheduled-jobs"
        )
    return application


_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def webhook_options(settings: Settings) -> WebhookOptions:
    """Where to listen and what to tell Telegram; refuses to run without a secret."""
    if not settings.webhook_url:
        raise SettingsError(
            "WEBHOOK_URL manquant : donnez l'adresse publique HTTPS du webhook "
            "(ex. https://assistant.example.org/telegram)."
        )
    url = urlsplit(settings.webhook_url)
    if url.scheme not in ("https", "http") or not url.netloc:
        raise SettingsError("WEBHOOK_URL mal formée : attendu https://hote/chemin.")
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if not secret:
        raise SettingsError(
            "WEBHOOK_SECRET manquant : le webhook refuse de démarrer sans secret partagé "
            "avec Telegram."
        )
    if not _SECRET.match(secret):
        raise SettingsError(
            "WEBHOOK_SECRET mal formé : 1 à 256 caractères parmi A-Z, a-z, 0-9, _ et -."
        )
    return WebhookOptions(
        # Behind a reverse proxy: listen on every interface of the container.
        listen="0.0.0.0",  # noqa: S104
        port=settings.port,
        # The proxy forwards the public path unchanged.
        url_path=url.path.strip("/"),
        webhook_url=settings.webhook_url,
        secret_token=secret,
    )


@contextlib.asynccontextmanager
async def polling_session(application: Application, **polling: Any) -> AsyncIterator[Application]:
    """Long polling inside an already running event loop (tests, bench), in run_polling's order:
    initialize, post_init, updater.start_polling, start; then stop in reverse on exit."""
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        assert application.updater is not None
        await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES, **polling)
        await application.start()
        try:
            yield application
        finally:
            if application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()
    finally:
        await application.shutdown()
        # run_polling calls post_shutdown (the core's worker threads stop); so do we.
        if application.post_shutdown is not None:
            await application.post_shutdown(application)


async def _check_token(settings: Settings) -> None:
    """Ask Telegram who we are before starting, so that a refused token or an unreachable API
    surfaces as InvalidToken / NetworkError, not as PTB's bootstrap-loop traceback."""
    base_url, base_file_url = base_urls(settings.telegram_api_url)
    token = settings.require_telegram_token()
    async with Bot(token, base_url=base_url, base_file_url=base_file_url):
        pass  # entering calls getMe


def run_polling(settings: Settings) -> None:
    """Long polling until SIGINT/SIGTERM; pending updates are processed before exit."""
    asyncio.run(_check_token(settings))
    app = start(settings)
    settle_heap()
    try:
        application = build_application(settings, app.assistant)
        # Default stop_signals (SIGINT, SIGTERM, SIGABRT): stop fetching, process what was
        # fetched, confirm it to Telegram; anything not fetched is redelivered next start.
        application.run_polling(allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False)
    finally:
        app.close()


def _ent_callback(app: App) -> BaseRoute | None:
    """GET /oauth/callback, with the ENT's directory and its OAuth2 sign-in."""
    if app.sign_in is None:
        return None
    from bot.core.signin import signed_in
    from bot.web.oauth import oauth_callback

    engine, clock = app.assistant.engine, app.assistant.clock
    return oauth_callback(
        app.sign_in, lambda account: signed_in(engine, account.speaker_key, account.login, clock())
    )


def run_webhook(settings: Settings) -> None:
    """Webhook server on $PORT until SIGINT/SIGTERM; requests need the secret-token header."""
    settings.require_telegram_token()
    options = webhook_options(settings)
    asyncio.run(_check_token(settings))
    app = start(settings)
    settle_heap()
    try:
        metrics = Metrics()
        application = build_application(settings, app.assistant, observer=metrics.observe)
        # Our server (bot.web), not PTB's run_webhook: 403 without the secret-token header,
        # 400 for a body that is not an update (PTB's answers 500), /healthz and /metrics.
        # Updates already accepted are processed on SIGTERM; Telegram redelivers the others.
        web = webhook_app(application, options, app.store.engine, metrics, _ent_callback(app))

        async def register() -> None:
            """Once listening: the webhook, with its secret, registered with Telegram."""
            await register_webhook(application, options, ALLOWED_UPDATES)

        serving = serve_until_signalled(web, options.listen, options.port, on_listening=register)
        asyncio.run(serving)
    finally:
        app.close()
