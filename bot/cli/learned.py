"""`knowledge export-learned` and `knowledge check --learned`: the phrasings taught in chat
(« C'est la FAQ… ») and the drafts of « Nouvelle réponse », from the database into review."""

from __future__ import annotations

import argparse
from datetime import UTC
from pathlib import Path

import yaml

from bot.core.ticket_records import KnowledgeDraft
from bot.settings import Settings

DRAFTS = "drafts"
DRAFT_HEADER = (
    "# Brouillon écrit depuis le chat par un eRun (« Nouvelle réponse ») : à relire. Pour le\n"
    "# publier, en faire une fiche de knowledge/faq/ (un id de intents.yaml, des phrasés, la\n"
    "# réponse en HTML Telegram), puis supprimer ce fichier.\n"
)


def run_export_learned(args: argparse.Namespace, settings: Settings) -> int:
    """Write the taught phrasings into knowledge/ and the drafts into knowledge/drafts/."""
    from bot.app import open_store
    from intents.kb import KnowledgeBase
    from intents.learned import check_learned, export_learned
    from knowledge import KNOWLEDGE_DIR

    root = Path(args.knowledge) if args.knowledge else KNOWLEDGE_DIR
    store = open_store(settings, seed_demo=False)
    try:
        learned = [p for p in store.tickets.learned() if not p.exported]
        drafts = [d for d in store.tickets.drafts() if not d.exported]
        pairs = [(p.text, p.intent) for p in learned]
        for line in check_learned(pairs, KnowledgeBase(root), []):
            print(f"ATTENTION : {line}")
        if args.dry_run:
            for text, intent in pairs:
                print(f"{intent} : « {text} »")
            print(f"{len(pairs)} phrasé(s) et {len(drafts)} brouillon(s) à exporter (rien écrit).")
            return 0
        report = export_learned(pairs, root)
        for line in report.lines():
            print(line)
        written = {" ".join(t.split()) for texts in report.written.values() for t in texts}
        present = {
            " ".join(t.split()) for t, _, why in report.skipped if why == "déjà dans la base"
        }
        done = [p.id for p in learned if " ".join(p.text.split()) in written | present]
        paths = _write_drafts(root / DRAFTS, drafts)
        with store.transaction():
            store.tickets.mark_exported(done)
            store.tickets.mark_drafts_exported([d.id for d in drafts])
        for path in paths:
            print(f"brouillon : {path.relative_to(root.parent)}")
        return 0
    finally:
        store.dispose()


def _write_drafts(folder: Path, drafts: list[KnowledgeDraft]) -> list[Path]:
    """One YAML file per draft, never overwriting one already there."""
    paths = []
    for draft in drafts:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"brouillon-{draft.id:04d}.yaml"
        body = yaml.safe_dump(
            {
                "question": draft.question,
                "answer": draft.answer,
                "author": draft.author,
                "created_at": draft.created_at.astimezone(UTC).isoformat(timespec="seconds"),
            },
            allow_unicode=True,
            sort_keys=False,
            width=99,
        )
        if not path.exists():
            path.write_text(DRAFT_HEADER + body, encoding="utf-8")
            paths.append(path)
    return paths


def learned_problems(settings: Settings, held_out: list[Path]) -> list[str]:
    """`knowledge check --learned`: the taught phrasings not yet exported that collide with
    another intent or nearly copy an evaluation line."""
    from bot.app import open_store
    from intents.kb import KnowledgeBase
    from intents.learned import check_learned, read_eval_lines

    store = open_store(settings, seed_demo=False)
    try:
        pairs = [(p.text, p.intent) for p in store.tickets.learned() if not p.exported]
    finally:
        store.dispose()
    return check_learned(pairs, KnowledgeBase(), read_eval_lines(held_out))
