"""`python -m bot …`: the command line of the assistant (contract: shared/cli-contract.md)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from bot.cli.errors import database_failure
from bot.settings import SettingsError, load_settings

# Modules that contribute sub-commands through add_commands(subparsers).
COMMAND_MODULES = ("bot.cli.chat", "bot.cli.storage", "bot.cli.telegram")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Assistant Rentrée ENT : questions de rentrée et actions de la direction.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMANDE")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        module.add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings()
    except SettingsError as error:
        print(str(error), file=sys.stderr)
        return 1
    # Commands stay quiet unless asked; `run` and `webhook` apply LOG_LEVEL themselves.
    debug = settings.log_level.upper() == "DEBUG"
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args, settings) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except SQLAlchemyError as error:
        return database_failure(error)
    except Exception as error:  # the operator gets one line; the detail goes to the log
        logging.getLogger(__name__).debug("unexpected failure", exc_info=True)
        print(
            f"Erreur inattendue ({type(error).__name__}) : {error}. Relancez avec "
            "LOG_LEVEL=DEBUG pour le détail.",
            file=sys.stderr,
        )
        return 1
