"""The CLI's one error guard: expected failures become one French line and exit status 1."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.settings import SettingsError

if TYPE_CHECKING:
    from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


class Refused(Exception):
    """A command that cannot go on for a reason the operator can fix; str() is French."""


def fail(message: str) -> int:
    """Print one French line on stderr and return the exit status for refused input."""
    line = " ".join(message.split())
    print(line[:1].upper() + line[1:], file=sys.stderr)
    return 1


def database_line(error: SQLAlchemyError | Exception) -> str:
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
    except (Refused, SettingsError) as error:
        return fail(str(error))
    except LookupError as error:  # unknown login or school: str() of a KeyError is quoted
        return fail(str(error).strip("'\""))
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        return fail(f"Erreur d'entrée-sortie : {error.strerror or error}{where}")
    except Exception as error:
        line = _storage_line(error)
        if line is not None:
            return fail(line)
        # A bug: one line for the operator, the detail in the log.
        log.debug("unexpected failure", exc_info=True)
        return fail(
            f"Erreur inattendue ({type(error).__name__}) : {error}. Relancez avec "
            "LOG_LEVEL=DEBUG pour le détail."
        )


def _storage_line(error: Exception) -> str | None:
    """The French line of a storage failure, or None. Looked up among the modules already
    loaded: a command that never opened the database (classify) never imports SQL."""
    french = [
        getattr(sys.modules.get(module), name, None)
        for module, name in (
            ("bot.storage.accounts", "AccountError"),
            ("bot.storage.school_rules", "SchoolFileError"),
            ("bot.storage.schema", "SchemaError"),
        )
    ]
    if any(isinstance(kind, type) and isinstance(error, kind) for kind in french):
        return str(error)
    database = getattr(sys.modules.get("sqlalchemy.exc"), "SQLAlchemyError", None)
    if isinstance(database, type) and isinstance(error, database):
        return database_line(error)
    return None
