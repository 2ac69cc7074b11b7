"""The CLI's one error guard: expected failures become one French line and exit status 1."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from bot.app import HasDatabaseUrl
from bot.storage.accounts import AccountError
from bot.storage.school_rules import SchoolFileError

Command = Callable[[argparse.Namespace, HasDatabaseUrl], int]


def fail(message: str) -> int:
    """Print one French line on stderr and return the exit status for refused input."""
    line = " ".join(message.split())
    print(line[:1].upper() + line[1:], file=sys.stderr)
    return 1


def database_failure(error: SQLAlchemyError) -> int:
    """The one line for a database that cannot be reached or read."""
    reason = str(getattr(error, "orig", None) or error).splitlines()[0]
    return fail(f"Base de données inaccessible ou invalide : {reason}")


def guarded(command: Command) -> Command:
    """Turn expected failures into one line on stderr and exit status 1, never a traceback."""

    @functools.wraps(command)
    def run(args: argparse.Namespace, settings: HasDatabaseUrl) -> int:
        try:
            return command(args, settings)
        except (SchoolFileError, AccountError) as error:
            return fail(str(error))
        except LookupError as error:  # unknown login or school: str() of a KeyError is quoted
            return fail(str(error).strip("'\""))
        except SQLAlchemyError as error:
            return database_failure(error)
        except OSError as error:
            return fail(f"Erreur d'entrée-sortie : {error.strerror or error}")

    return run
