"""Sub-commands around understanding: chat, classify, eval and knowledge check."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.core.services import Services
    from intents.nlu.understanding import Understander

# The evaluation sets beside the project (../shared/eval), when they are there.
EVAL_SETS = Path(__file__).resolve().parents[2].parent / "shared" / "eval"
# Sets written apart from knowledge/ on the demo school (tests/data/probe*.jsonl): measured,
# never learned from.
PROBE_DIR = Path(__file__).resolve().parents[2] / "tests" / "data"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register chat, classify, eval and knowledge on the main parser's sub-parsers."""
    chat = subparsers.add_parser("chat", help="conversation avec l'assistant dans le terminal")
    chat.add_argument("--jsonl", action="store_true", help="un objet JSON par ligne (scripts)")
    chat.add_argument("--as", dest="login", help="parler au nom de ce compte de l'annuaire")
    chat.add_argument(
        "--demo",
        action="store_true",
        help="charger l'école de démonstration si l'annuaire de DATABASE_URL est vide",
    )
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
    evaluate.add_argument(
        "--baseline",
        action="store_true",
        help="entraîne aussi le modèle de référence (TF-IDF + régression logistique) et compare",
    )
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
    check.add_argument(
        "--held-out",
        nargs="*",
        metavar="JSONL",
        help="jeux d'évaluation qu'aucun phrasé ne doit recopier "
        "(par défaut ../shared/eval/*.jsonl s'ils existent)",
    )
    check.add_argument(
        "--learned",
        action="store_true",
        help="vérifie aussi les phrasés appris dans le chat (base DATABASE_URL)",
    )
    check.set_defaults(func=run_knowledge_check)
    learned = knowledge_sub.add_parser(
        "export-learned",
        help="écrit dans knowledge/ les phrasés appris dans le chat et les brouillons",
    )
    learned.add_argument("--dry-run", action="store_true", help="montrer sans rien écrire")
    learned.add_argument("--knowledge", help=argparse.SUPPRESS)
    learned.set_defaults(func=_export_learned)
    tune = knowledge_sub.add_parser(
        "tune", help="choisit poids, seuils et calibration par validation croisée"
    )
    tune.add_argument("--folds", type=int, default=5, help="nombre de plis (5 par défaut)")
    tune.set_defaults(func=run_knowledge_tune)


def _school_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--directory", help="fichier école (JSON) chargé en mémoire")
    parser.add_argument("--structure", help="identifiant de l'école du locuteur")


def _in_memory(args: argparse.Namespace) -> tuple[Services, str | None]:
    """A throw-away in-memory store: the --directory school, or no school at all."""
    from bot.storage.schoolfile import import_school
    from bot.storage.store import Store

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


def _open(args: argparse.Namespace, settings: Settings) -> tuple[Services, str | None]:
    """The store to use: a throw-away in-memory school, or DATABASE_URL (the demo school
    when empty, on the embedded default or with --demo)."""
    from bot.app import open_store

    if args.directory:
        if args.demo:
            raise LookupError("--demo ne va pas avec --directory")
        return _in_memory(args)
    if args.structure:
        raise LookupError("--structure va avec --directory")
    return open_store(settings, demo=args.demo), None


def _on_the_ent(args: argparse.Namespace, settings: Settings, store: Any) -> Services:
    """The console over the ENT acts with ENT_ACCESS_TOKEN, as that token's user only."""
    from bot.core.services import ACTING_FOR
    from bot.entcore.backend import ent_backend
    from bot.entcore.oauth import EntAuthError, identify

    if settings.ent_access_token is None or settings.ent_url is None:
        raise LookupError("Sur l'ENT, le terminal agit avec ENT_ACCESS_TOKEN : donnez-le.")
    try:
        who = identify(settings.ent_url, settings.ent_access_token.get_secret_value())
    except EntAuthError as error:
        raise LookupError(str(error)) from None
    if args.login and args.login != who.login:
        raise LookupError(
            f"ENT_ACCESS_TOKEN est le jeton de « {who.login} », pas de « {args.login} »."
        )
    args.login = who.login
    services, _ = ent_backend(settings, store)
    ACTING_FOR.set(f"console:{who.login}")
    return services


def run_chat(args: argparse.Namespace, settings: Settings) -> int:
    """Conversation in the terminal, interactive or JSONL."""
    from bot.channels.console import Console

    store, structure = _open(args, settings)
    if settings.directory_backend == "entcore":
        store = _on_the_ent(args, settings, store)
    try:
        console = Console.create(settings, store, login=args.login, structure=structure)
        if args.jsonl:
            return console.run_jsonl(sys.stdin, sys.stdout)
        return console.run_interactive(sys.stdin, sys.stdout)
    finally:
        # The ENT's connections (the store is left to the process's end, as before).
        close = getattr(store.directory, "close", None)
        if close is not None:
            close()


def _understander(args: argparse.Namespace, settings: Settings) -> tuple[Understander, Any]:
    """What classify needs: the understanding alone, and a directory only when a school file
    is given (no SQL otherwise, no Telegram ever: a cold start stays fast)."""
    import intents.handlers  # noqa: F401 - registers the handlers, whose slots are read
    from intents.kb import KnowledgeBase
    from intents.nlu.matcher import Matcher
    from intents.nlu.understanding import Understander

    kb = KnowledgeBase()
    understander = Understander(
        kb, Matcher(kb, cache_dir=settings.model_cache_dir), None, settings.confidence_floor
    )
    if not args.directory:
        if args.structure:
            raise LookupError("--structure va avec --directory")
        return understander, (None, None)
    store, structure = _in_memory(args)
    return understander, (store.directory, structure)


def run_classify(args: argparse.Namespace, settings: Settings) -> int:
    """Intent, confidence, entities and alternatives of each JSONL line."""
    understander, (directory, structure) = _understander(args, settings)
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
        u = understander.understand(text, directory, structure)
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
    report = evaluate(
        Path(args.file), settings, store, structure, started=started, baseline=args.baseline
    )
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        print(format_report(report))
    return 0


def run_knowledge_check(args: argparse.Namespace, settings: Settings) -> int:
    """Every id known, every template renders, no phrasing twice, close pairs listed."""
    from intents.check import check_knowledge

    if args.held_out is None:
        held_out = sorted(EVAL_SETS.glob("*.jsonl")) if EVAL_SETS.is_dir() else []
        held_out += sorted(PROBE_DIR.glob("probe*.jsonl")) if PROBE_DIR.is_dir() else []
    else:
        held_out = [Path(p) for p in args.held_out]
    errors, warnings, notes = check_knowledge(self_test=args.self_test, held_out=held_out)
    if getattr(args, "learned", False):
        from bot.cli.learned import learned_problems

        errors += learned_problems(settings, held_out)
    if held_out:
        notes.append(f"Jeux d'évaluation tenus à l'écart : {', '.join(p.name for p in held_out)}.")
    for line in notes:
        print(line)
    for line in warnings:
        print(f"ATTENTION : {line}")
    for line in errors:
        print(f"ERREUR : {line}")
    print(f"{len(errors)} erreur(s), {len(warnings)} avertissement(s).")
    return 1 if errors else 0


def _export_learned(args: argparse.Namespace, settings: Settings) -> int:
    """knowledge export-learned (bot/cli/learned.py)."""
    from bot.cli.learned import run_export_learned

    return run_export_learned(args, settings)


def run_knowledge_tune(args: argparse.Namespace, settings: Settings) -> int:
    """Choose the understanding's settings by cross-validation and write knowledge/tuning.yaml."""
    from intents.kb import KnowledgeBase
    from intents.nlu.tune import tune
    from intents.nlu.tuning import TUNING_FILE, save_tuning

    if args.folds < 2:
        raise LookupError("--folds : au moins 2 plis")
    tuning = tune(KnowledgeBase(), folds=args.folds, progress=lambda line: print(line, flush=True))
    save_tuning(tuning)
    print(f"Écrit dans {TUNING_FILE} : {tuning.as_data()}")
    return 0
