"""The schema's version: migrate a database to the latest revision (Alembic, scripts in
bot/storage/migrations), and tell whether a database is current before the assistant uses it.

Migrating is a release step (`python -m bot db upgrade`); only the embedded SQLite file and
throw-away in-memory databases are migrated at start (bot.app.open_store).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_COMMAND = "python -m bot db upgrade"
VERSION_TABLE = "alembic_version"
# pg_advisory_xact_lock key ("ENTA"): two release steps started at once run one after the other.
UPGRADE_LOCK = 0x454E5441


class SchemaError(Exception):
    """The database's schema is not the one this code needs; str() is one French line."""


@dataclass(frozen=True)
class Upgrade:
    """What one upgrade did."""

    before: str | None  # None: no revision yet (an empty database, or one older than Alembic)
    after: str
    applied: list[str] = field(default_factory=list)  # revisions applied, oldest first
    created: list[str] = field(default_factory=list)  # tables that did not exist before

    def lines(self) -> list[str]:
        """The report of `db upgrade`, in French, one line each."""
        if not self.applied:
            return [f"Base de données déjà à jour (révision {self.after})."]
        start = f"de la révision {self.before} " if self.before else ""
        lines = [
            f"Base de données migrée {start}à la révision {self.after} (appliquées : "
            f"{', '.join(self.applied)})."
        ]
        if self.created:
            lines.append(f"{len(self.created)} table(s) créée(s) : {', '.join(self.created)}.")
        return lines


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def _scripts() -> ScriptDirectory:
    """The revisions, read once per process: for the start-up check and the reports."""
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The latest revision, the one this code needs."""
    latest = _scripts().get_current_head()
    assert latest is not None, f"no revision in {MIGRATIONS}"
    return latest


def current(connection: Connection) -> str | None:
    """The database's revision; None when it has none (empty, or created before Alembic)."""
    return MigrationContext.configure(connection).get_current_revision()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {VERSION_TABLE}


def upgrade(engine: Engine) -> Upgrade:
    """Migrate the database to the latest revision in one transaction (PostgreSQL runs DDL
    transactionally: a failed step leaves the database as it was)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
        before = current(connection)
        tables_before = _tables(connection)
        config = _config()
        # env.py runs the migrations on this connection, inside this transaction.
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        after = current(connection)
        created = sorted(_tables(connection) - tables_before)
    assert after is not None
    steps = _scripts().iterate_revisions(after, before or "base")
    applied = [script.revision for script in reversed(list(steps))]
    return Upgrade(before, after, applied, created)


def check(engine: Engine) -> None:
    """Raise SchemaError, naming the upgrade command, unless the database is at the latest
    revision: the assistant never runs on a schema it does not know."""
    with engine.connect() as connection:
        revision = current(connection)
        if revision == head():
            return
        tables = _tables(connection)
    if revision is None and not tables:
        raise SchemaError(
            f"La base de données est vide : lancez « {UPGRADE_COMMAND} » pour créer ses "
            "tables avant de démarrer."
        )
    if revision is None:
        raise SchemaError(
            "La base de données date d'avant les migrations : lancez "
            f"« {UPGRADE_COMMAND} » pour la mettre à jour avant de démarrer."
        )
    try:
        _scripts().get_revision(revision)
    except CommandError:
        raise SchemaError(
            f"La base de données est à une révision inconnue de cette version ({revision}) : "
            "elle a été migrée par une version plus récente de l'assistant."
        ) from None
    raise SchemaError(
        f"Le schéma de la base de données n'est pas à jour (révision {revision}, attendue "
        f"{head()}) : lancez « {UPGRADE_COMMAND} » avant de démarrer."
    )
