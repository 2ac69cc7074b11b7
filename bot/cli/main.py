"""`python -m bot …`: the command line of the assistant (contract: shared/cli-contract.md)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence

from bot.cli import chat, storage, telegram
from bot.cli.errors import guarded
from bot.settings import Settings, load_settings

# Each module adds its sub-commands with add_commands(subparsers); each sub-command sets
# `func`, a Command, that main runs inside the one error guard.
COMMAND_MODULES = (chat, storage, telegram)
Command = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    """The one parser: every command module adds its sub-commands to it."""
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Assistant Rentrée ENT : questions de rentrée et actions de la direction.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMANDE")
    for module in COMMAND_MODULES:
        module.add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sub-command named in `argv` and return the exit status (cli-contract.md)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return guarded(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    # Commands stay quiet unless asked; `run` and `webhook` apply LOG_LEVEL themselves.
    debug = settings.log_level.upper() == "DEBUG"
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    command: Command = args.func
    return command(args, settings)
