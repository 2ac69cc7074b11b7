"""Sub-commands around understanding: chat, classify, eval and knowledge check."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bot.app import open_store
from bot.settings import Settings
from bot.storage.schoolfile import import_school
from bot.storage.store import Store


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register chat, classify, eval and knowledge on the main parser's sub-parsers."""
    chat = subparsers.add_parser("chat", help="conversation avec l'assistant dans le terminal")
    chat.add_argument("--jsonl", action="store_true", help="un objet JSON par ligne (scripts)")
    chat.add_argument("--as", dest="login", help="parler au nom de ce compte de l'annuaire")
    _school_options(chat)
    chat.set_defaults(func=run_chat)

    classify = subparsers.add_parser("classify", help="intention et entités de chaque message")
    classify.add_argument(
        "--jsonl", action="store_true", required=True, help="lit et écrit un objet JSON par ligne"
    )
    _school_options(classify)
    classify.set_defaults(func=run_classify)

    evaluate = subparsers.add_parser("eval", help="mesure la compréhension sur un jeu annoté")
    evaluate.add_argument("file", help="fichier JSONL annoté (text, intent, entities)")
    evaluate.add_argument("--json", action="store_true", help="rapport en JSON")
    _school_options(evaluate)
    evaluate.set_defaults(func=run_eval)

    knowledge = subparsers.add_parser("knowledge", help="vérifie la base de connaissances")
    knowledge_sub = knowledge.add_subparsers(dest="knowledge_command", metavar="COMMANDE")
    check = knowledge_sub.add_parser("check", help="identifiants, gabarits, phrasés")
    check.add_argument(
        "--self-test",
        action="store_true",
        help="ajoute la précision en validation croisée en 5 plis",
    )
    check.set_defaults(func=run_knowledge_check)


def _school_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--directory", help="fichier école (JSON) chargé en mémoire")
    parser.add_argument("--structure", help="identifiant de l'école du locuteur")


def _in_memory(args: argparse.Namespace) -> tuple[Store, str | None]:
    """A throw-away in-memory store: the --directory school, or no school at all."""
    store = Store.in_memory()
    if not args.directory:
        if args.structure:
            raise LookupError("--structure va avec --directory")
        return store, None
    import_school(store, Path(args.directory))
    structure = args.structure
    if structure and store.directory.structure(structure) is None:
        raise LookupError(f"École inconnue dans {args.directory} : {structure}")
    if structure is None:
        structures = store.directory.structures()
        structure = structures[0].id if structures else None
    return store, structure


def _open(args: argparse.Namespace, settings: Settings) -> tuple[Store, str | None]:
    """The store to use: a throw-away in-memory school, or DATABASE_URL (demo if empty)."""
    if args.directory:
        return _in_memory(args)
    if args.structure:
        raise LookupError("--structure va avec --directory")
    return open_store(settings), None


def run_chat(args: argparse.Namespace, settings: Settings) -> int:
    """Conversation in the terminal, interactive or JSONL."""
    from bot.channels.console import Console

    store, structure = _open(args, settings)
    console = Console.create(settings, store, login=args.login, structure=structure)
    if args.jsonl:
        return console.run_jsonl(sys.stdin, sys.stdout)
    return console.run_interactive(sys.stdin, sys.stdout)


def run_classify(args: argparse.Namespace, settings: Settings) -> int:
    """Intent, confidence, entities and alternatives of each JSONL line."""
    from bot.core.assistant import Assistant

    store, structure = _in_memory(args)
    assistant = Assistant.create(settings, store)
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            text = item["text"]
            if not isinstance(text, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            print(
                json.dumps(
                    {"line": number, "error": "ligne JSON invalide (champ text attendu)"},
                    ensure_ascii=False,
                ),
                flush=True,
            )
            continue
        u = assistant.understand(text, structure)
        print(
            json.dumps(
                {
                    "text": text,
                    "intent": u.intent,
                    "confidence": round(u.confidence, 4),
                    "entities": u.entities,
                    "alternatives": [
                        {"intent": i, "confidence": round(c, 4)} for i, c in u.alternatives
                    ],
                },
                ensure_ascii=False,
            )
        )
    return 0


def run_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Accuracy, rejection, entities and timing over a labelled JSONL file."""
    from bot.cli.evaluation import evaluate, format_report

    started = time.perf_counter()
    store, structure = _in_memory(args)
    report = evaluate(Path(args.file), settings, store, structure, started=started)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        print(format_report(report))
    return 0


def run_knowledge_check(args: argparse.Namespace, settings: Settings) -> int:
    """Every id known, every template renders, no phrasing twice, close pairs listed."""
    from intents.check import check_knowledge

    errors, warnings, notes = check_knowledge(self_test=args.self_test)
    for line in notes:
        print(line)
    for line in warnings:
        print(f"ATTENTION : {line}")
    for line in errors:
        print(f"ERREUR : {line}")
    print(f"{len(errors)} erreur(s), {len(warnings)} avertissement(s).")
    return 1 if errors else 0
