"""Command-line sub-commands for the database: directory, db, audit and accounts."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.cli.errors import fail

if TYPE_CHECKING:
    from bot.app import HasDatabaseUrl
    from bot.settings import Settings

# SQL is imported by each command when it runs: `python -m bot classify` never needs it.


def _local_time(moment: datetime) -> str:
    """A moment as French schools read it (Paris time), or UTC when no time zone data."""
    try:
        return moment.astimezone(ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y à %H:%M (Paris)")
    except ZoneInfoNotFoundError:
        return moment.strftime("%d/%m/%Y à %H:%M UTC")


def directory_import(args: argparse.Namespace, settings: HasDatabaseUrl) -> int:
    """`directory import FILE`."""
    from bot.app import open_store
    from bot.storage.school_rules import load_file, refusal, validate
    from bot.storage.schoolfile import import_school

    # Read and check the file first: a bad file is named before the database is even opened
    # (no new empty database behind, and its errors come before a schema to migrate).
    data = load_file(args.file)
    errors = validate(data)
    if errors:
        raise refusal(errors)
    store = open_store(settings, seed_demo=False)
    try:
        summary = import_school(store, data)
    finally:
        store.dispose()
    print(summary.line())
    return 0


def directory_export(args: argparse.Namespace, settings: HasDatabaseUrl) -> int:
    """`directory export [--output FILE]`."""
    from bot.app import open_store
    from bot.storage.schoolfile import export_school

    store = open_store(settings, seed_demo=False)
    try:
        text = json.dumps(export_school(store), ensure_ascii=False, indent=1)
    finally:
        store.dispose()
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


def db_upgrade(args: argparse.Namespace, settings: HasDatabaseUrl) -> int:
    """`db upgrade`: the release step, run once per deployment before the instances start."""
    from bot.storage.store import Store

    # Not open_store: it refuses an outdated schema, which is what this command fixes.
    store = Store.from_url(settings.database_url)
    try:
        done = store.migrate()
    finally:
        store.dispose()
    for line in done.lines():
        print(line)
    return 0


def audit_show(args: argparse.Namespace, settings: HasDatabaseUrl) -> int:
    """`audit [--json]`."""
    from bot.app import open_store
    from bot.storage.audit import Names, to_json_line, to_text_line

    store = open_store(settings, seed_demo=False)
    try:
        entries = store.audit.entries()
        # The school's and the accounts' names, as the directory knows them now.
        names = Names.of(store.directory, entries)
    finally:
        store.dispose()
    for entry in entries:
        if args.json:
            print(json.dumps(to_json_line(entry, names), ensure_ascii=False))
        else:
            print(to_text_line(entry, names))
    return 0


def accounts_invite(args: argparse.Namespace, settings: HasDatabaseUrl) -> int:
    """`accounts invite LOGIN`."""
    from bot.app import open_store
    from bot.storage.accounts import CODE_TTL
    from bot.storage.tables import utc_now

    store = open_store(settings, demo=args.demo)
    now = utc_now()
    try:
        if store.is_empty():
            # An operator's database is never filled with the demo school on its own.
            return fail(
                f"L'annuaire est vide : importez d'abord le fichier de l'école (python -m bot "
                f"directory import FICHIER) pour inviter {args.login}, ou ajoutez --demo pour "
                "l'école de démonstration."
            )
        code = store.accounts.invite(args.login, now)
    finally:
        store.dispose()
    print(
        f"{code}  (code à usage unique pour {args.login}, valable jusqu'au "
        f"{_local_time(now + CODE_TTL)})"
    )
    return 0


def accounts_list(args: argparse.Namespace, settings: HasDatabaseUrl) -> int:
    """`accounts list`."""
    from bot.app import open_store

    store = open_store(settings, seed_demo=False)
    try:
        links = store.accounts.list_links()
    finally:
        store.dispose()
    if not links:
        print("Aucun compte Telegram lié.")
    for link in links:
        print(f"{link.login}\t{link.speaker_key}\t{link.linked_at.isoformat(timespec='seconds')}")
    return 0


def accounts_revoke(args: argparse.Namespace, settings: HasDatabaseUrl) -> int:
    """`accounts revoke LOGIN`."""
    from bot.app import open_store

    store = open_store(settings, seed_demo=False)
    try:
        known = store.directory.user_by_login(args.login) is not None
        speakers = store.accounts.revoke(args.login)
    finally:
        store.dispose()
    if not known and not speakers:
        return fail(f"Aucun compte « {args.login} » dans l'annuaire.")
    print(
        f"{len(speakers)} liaison(s) Telegram supprimée(s) pour {args.login} ; "
        "ses codes non utilisés sont annulés."
    )
    return 0


def accounts_export(args: argparse.Namespace, settings: HasDatabaseUrl) -> int:
    """`accounts export LOGIN`: everything stored about that account, as JSON."""
    from bot.app import open_store
    from bot.storage.personal_data import account_export

    store = open_store(settings, seed_demo=False)
    try:
        export = account_export(store, args.login)
    finally:
        store.dispose()
    if export is None:
        return fail(f"Aucun compte « {args.login} » dans l'annuaire.")
    print(json.dumps(export, ensure_ascii=False, indent=1))
    return 0


def purge(args: argparse.Namespace, settings: Settings) -> int:
    """`purge`: delete what is older than RETENTION_DAYS (AUDIT_RETENTION_DAYS for the
    audit log) and print the counts; for cron or a one-off run."""
    from bot.app import open_store
    from bot.storage.retention import purge as purge_now

    store = open_store(settings, seed_demo=False)
    try:
        done = purge_now(store, settings.retention_days, settings.audit_retention_days)
    finally:
        store.dispose()
    print(done.line())
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register directory, db, audit and accounts on the main parser's sub-parsers."""
    directory = subparsers.add_parser("directory", help="importer / exporter l'annuaire")
    directory_commands = directory.add_subparsers(
        dest="directory_command", metavar="ACTION", required=True
    )
    importer = directory_commands.add_parser("import", help="charger un fichier d'école (JSON)")
    importer.add_argument("file", metavar="FILE")
    importer.set_defaults(func=directory_import)
    exporter = directory_commands.add_parser("export", help="écrire l'annuaire en JSON")
    exporter.add_argument("--output", "-o", metavar="FILE", help="fichier (défaut : sortie)")
    exporter.set_defaults(func=directory_export)

    database = subparsers.add_parser("db", help="schéma de la base de données")
    database_commands = database.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    database_commands.add_parser(
        "upgrade", help="migrer le schéma à la dernière révision (étape de mise en production)"
    ).set_defaults(func=db_upgrade)

    audit = subparsers.add_parser("audit", help="journal des actions des directeurs")
    audit.add_argument("--json", action="store_true", help="un objet JSON par ligne")
    audit.set_defaults(func=audit_show)

    accounts = subparsers.add_parser("accounts", help="liaison des comptes Telegram")
    accounts_commands = accounts.add_subparsers(
        dest="accounts_command", metavar="ACTION", required=True
    )
    invite = accounts_commands.add_parser("invite", help="créer un code de liaison (48 h)")
    invite.add_argument("login", metavar="LOGIN")
    invite.add_argument(
        "--demo",
        action="store_true",
        help="charger l'école de démonstration si l'annuaire de DATABASE_URL est vide",
    )
    invite.set_defaults(func=accounts_invite)
    accounts_commands.add_parser("list", help="comptes liés").set_defaults(func=accounts_list)
    revoke = accounts_commands.add_parser("revoke", help="délier un compte")
    revoke.add_argument("login", metavar="LOGIN")
    revoke.set_defaults(func=accounts_revoke)
    export = accounts_commands.add_parser(
        "export", help="tout ce qui est gardé sur un compte, en JSON (demande d'accès RGPD)"
    )
    export.add_argument("login", metavar="LOGIN")
    export.set_defaults(func=accounts_export)

    subparsers.add_parser(
        "purge",
        help="supprimer ce qui dépasse RETENTION_DAYS (AUDIT_RETENTION_DAYS pour l'audit)",
    ).set_defaults(func=purge)
