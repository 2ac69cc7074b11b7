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
    bench.add_argument(
        "target",
        choices=["telegram", "load", "triage"],
        help="telegram : une instance, de bout en bout ; load : plusieurs instances webhook "
        "sur PostgreSQL, avec contrôles de pertes et de doublons ; triage : /triage d'un eRun",
    )
    bench.add_argument("--tickets", type=int, default=1000, help="triage : questions ouvertes")
    bench.add_argument("-n", type=int, default=2000, help="nombre de messages mesurés")
    bench.add_argument(
        "--concurrency", type=int, default=4, help="messages en cours à tout instant"
    )
    bench.add_argument(
        "--rate-limiter",
        action="store_true",
        help="garder AIORateLimiter (plafonne à 30 messages/s, la limite de Telegram)",
    )
    bench.add_argument(
        "--db-delay-ms",
        type=float,
        default=0.0,
        help="millisecondes ajoutées à chaque aller-retour avec la base (base lente ou lointaine)",
    )
    bench.add_argument(
        "--database",
        default=None,
        help="URL PostgreSQL où créer un schéma jetable (telegram : SQLite en mémoire par "
        "défaut ; load : DATABASE_URL)",
    )
    bench.add_argument("--users", type=int, default=500, help="load : utilisateurs simulés")
    bench.add_argument("--instances", type=int, default=2, help="load : instances webhook")
    bench.add_argument(
        "--arrivals",
        type=float,
        default=10.0,
        help="load : utilisateurs arrivant par seconde (100 au plus en conversation à la fois)",
    )
    bench.add_argument(
        "--faults",
        action="store_true",
        help="load : tuer les connexions (pg_terminate_backend) et redémarrer une instance",
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
    """assistant Telegram en webhook sur $PORT derrière un proxy (WEBHOOK_URL, WEBHOOK_SECRET),
    avec /healthz et /metrics ; arrêt propre sur SIGTERM"""
    from bot.channels.telegram.app import run_webhook

    _seed_demo(args, settings)
    return _start(run_webhook, settings)


def bench_command(args: argparse.Namespace, settings: Settings) -> int:
    """mesure débit et latence de bout en bout contre un faux serveur Bot API local"""
    if args.target == "load":
        return _bench_load(args, settings)
    if args.target == "triage":
        from bot.cli.triage_bench import run_triage_bench

        if args.tickets < 1:
            return fail("--tickets doit être au moins 1.")
        return run_triage_bench(settings, args.tickets)
    from bot.channels.telegram.bench import run_bench

    if args.n < 1 or args.concurrency < 1:
        return fail("-n et --concurrency doivent être au moins 1.")
    if args.db_delay_ms < 0:
        return fail("--db-delay-ms ne peut pas être négatif.")
    return run_bench(
        settings,
        args.n,
        concurrency=args.concurrency,
        rate_limiter=args.rate_limiter,
        db_delay_ms=args.db_delay_ms,
        database_url=args.database or "sqlite://",
    )


def _bench_load(args: argparse.Namespace, settings: Settings) -> int:
    """`bench load`: the instances need a PostgreSQL server (a throw-away schema in it)."""
    from bot.channels.telegram.load import run_load_command

    database = args.database or settings.database_url
    if not database.startswith("postgresql"):
        return fail(
            "bench load a besoin de PostgreSQL : --database postgresql+psycopg://… "
            "(ou DATABASE_URL) ; un schéma jetable y est créé puis supprimé."
        )
    if args.users < 2 or args.instances < 1:
        return fail("--users doit être au moins 2 et --instances au moins 1.")
    if not 0 < args.arrivals <= 1000:
        return fail("--arrivals doit être entre 0 (exclu) et 1000 utilisateurs par seconde.")
    return run_load_command(
        database,
        users=args.users,
        faults=args.faults,
        instances=args.instances,
        arrivals=args.arrivals,
    )
