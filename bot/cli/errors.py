"""The CLI's one error guard: expected failures become one French line and exit status 1."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from bot.settings import SettingsError
from bot.storage.accounts import AccountError
from bot.storage.school_rules import SchoolFileError

log = logging.getLogger(__name__)


class Refused(Exception):
    """A command that cannot go on for a reason the operator can fix; str() is French."""


def fail(message: str) -> int:
    """Print one French line on stderr and return the exit status for refused input."""
    line = " ".join(message.split())
    print(line[:1].upper() + line[1:], file=sys.stderr)
    return 1


def database_line(error: SQLAlchemyError) -> str:
    """The one French line for a database that cannot be reached or read."""
    reason = str(getattr(error, "orig", None) or error).splitlines()[0]
    return f"Base de données inaccessible ou invalide : {reason}"


def guarded(command: Callable[[], int]) -> int:
    """Run a command and return its exit status; no traceback ever reaches the operator."""
    try:
        return int(command() or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): nothing left to tell it
        return 0
    except (Refused, SettingsError, SchoolFileError, AccountError) as error:
        return fail(str(error))
    except LookupError as error:  # unknown login or school: str() of a KeyError is quoted
        return fail(str(error).strip("'\""))
    except SQLAlchemyError as error:
        return fail(database_line(error))
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        return fail(f"Erreur d'entrée-sortie : {error.strerror or error}{where}")
    except Exception as error:  # a bug: one line for the operator, the detail in the log
        log.debug("unexpected failure", exc_info=True)
        return fail(
            f"Erreur inattendue ({type(error).__name__}) : {error}. Relancez avec "
            "LOG_LEVEL=DEBUG pour le détail."
        )
