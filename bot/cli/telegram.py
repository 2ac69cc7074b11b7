"""Command-line sub-commands of the Telegram front end: run, webhook and bench."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bot.cli.errors import Refused, fail
from bot.settings import Settings


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register run, webhook and bench on the main parser's sub-parsers."""
    run = subparsers.add_parser("run", help=run_command.__doc__)
    _demo_option(run)
    run.set_defaults(func=run_command)

    webhook = subparsers.add_parser("webhook", help=webhook_command.__doc__)
    _demo_option(webhook)
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


def _demo_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--demo",
        action="store_true",
        help="charger l'école de démonstration si l'annuaire de DATABASE_URL est vide",
    )


def _seed_demo(args: argparse.Namespace, settings: Settings) -> None:
    """With --demo, fill an empty directory with the demo school before the front end opens
    the store (it checks the schema, so an outdated one is refused here already)."""
    if args.demo:
        from bot.app import open_store

        open_store(settings, demo=True).dispose()


def _configure_logging(settings: Settings) -> None:
    """LOG_LEVEL, and the mask that keeps the token, the webhook secret and link codes out of
    every log record (bot.logs), installed before anything of Telegram runs."""
    # Imported here: bot.logs reads the code format from the storage, which commands such as
    # `classify` must not load.
    from bot.logs import configure_logging

    configure_logging(settings)


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

    _seed_demo(args, settings)
    return _start(run_polling, settings)


def webhook_command(args: argparse.Namespace, settings: Settings) -> int:
    """assistant Telegram en webhook sur $PORT, derrière un proxy (WEBHOOK_URL, WEBHOOK_SECRET)"""
    from bot.channels.telegram.app import run_webhook

    _seed_demo(args, settings)
    return _start(run_webhook, settings)


def bench_command(args: argparse.Namespace, settings: Settings) -> int:
    """mesure débit et latence de bout en bout contre un faux serveur Bot API local"""
    from bot.channels.telegram.bench import run_bench

    if args.n < 1 or args.concurrency < 1:
        return fail("-n et --concurrency doivent être au moins 1.")
    return run_bench(
        settings, args.n, concurrency=args.concurrency, rate_limiter=args.rate_limiter
    )
