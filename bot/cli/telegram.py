"""Command-line sub-commands of the Telegram front end: run, webhook and bench."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from bot.cli.errors import Refused, fail
from bot.settings import Settings, SettingsError


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register run, webhook and bench on the main parser's sub-parsers."""
    run = subparsers.add_parser("run", help=run_command.__doc__)
    run.set_defaults(func=run_command)

    webhook = subparsers.add_parser("webhook", help=webhook_command.__doc__)
    webhook.set_defaults(func=webhook_command)

    bench = subparsers.add_parser("bench", help=bench_command.__doc__)
    bench.add_argument("target", choices=["telegram"], help="ce qui est mesuré")
    bench.add_argument("-n", type=int, default=2000, help="nombre de messages mesurés")
    bench.add_argument(
        "--concurrency", type=int, default=4, help="messages en cours à tout instant"
    )
    bench.add_argument(
        "--rate-limiter",
        action="store_true",
        help="garder AIORateLimiter (plafonne à 30 messages/s, la limite de Telegram)",
    )
    bench.set_defaults(func=bench_command)


def _configure_logging(settings: Settings) -> None:
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        raise SettingsError(f"LOG_LEVEL inconnu : {settings.log_level} (DEBUG, INFO, WARNING…).")
    logging.getLogger().setLevel(level)
    # httpx logs every request URL at INFO, and the URL holds the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _start(start: Callable[[Settings], None], settings: Settings) -> int:
    """Start a front end; Telegram's start-up failures become a French reason (Refused)."""
    from telegram.error import InvalidToken, NetworkError

    _configure_logging(settings)
    try:
        start(settings)
    except InvalidToken:
        raise Refused(
            "TELEGRAM_TOKEN refusé par Telegram : vérifiez le jeton donné par @BotFather "
            "(révoqué ou mal copié ?)."
        ) from None
    except NetworkError as error:
        raise Refused(
            f"Impossible de joindre l'API Telegram (TELEGRAM_API_URL) : {error.message}"
        ) from None
    except OSError as error:  # port already in use, for instance
        raise Refused(f"Démarrage impossible : {error.strerror or error}") from None
    return 0


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """assistant Telegram en long polling (worker), arrêt propre sur SIGTERM"""
    from bot.channels.telegram.app import run_polling

    return _start(run_polling, settings)


def webhook_command(args: argparse.Namespace, settings: Settings) -> int:
    """assistant Telegram en webhook sur $PORT, derrière un proxy (WEBHOOK_URL, WEBHOOK_SECRET)"""
    from bot.channels.telegram.app import run_webhook

    return _start(run_webhook, settings)


def bench_command(args: argparse.Namespace, settings: Settings) -> int:
    """mesure débit et latence de bout en bout contre un faux serveur Bot API local"""
    from bot.channels.telegram.bench import run_bench

    if args.n < 1 or args.concurrency < 1:
        return fail("-n et --concurrency doivent être au moins 1.")
    return run_bench(
        settings, args.n, concurrency=args.concurrency, rate_limiter=args.rate_limiter
    )
