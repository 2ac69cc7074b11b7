"""`knowledge check`, like `rasa data validate`: the knowledge base is sound."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from jinja2 import TemplateError
from rapidfuzz import fuzz, process

from intents.kb import KnowledgeBase, KnowledgeError
from intents.nlu.normalize import fold

MIN_EXAMPLES = 12
# A phrasing nearly copies an evaluation line of its intent from this many words and this
# rapidfuzz ratio up, after accent folding (../shared/evaluation.md).
COPY_MIN_WORDS = 4
COPY_RATIO = 90
TITLE_MAX = 40
CLOSE_PAIR = 92
_HREF = re.compile(r'href="([^"]*)"')
_ALLOWED_TAGS = re.compile(r"</?(?:b|i|u|s|a|code|pre|blockquote)(?:\s[^>]*)?>")
_ANY_TAG = re.compile(r"<[^>]+>")


def check_knowledge(
    *, self_test: bool = False, held_out: Sequence[Path] = ()
) -> tuple[list[str], list[str], list[str]]:
    """Errors (exit 1), warnings and notes about the knowledge base; `held_out` are the
    evaluation sets that no phrasing may copy."""
    errors: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    try:
        kb = KnowledgeBase()
    except KnowledgeError as error:
        return [str(error)], warnings, notes
    for entry in kb.entries.values():
        where = entry.source.name if entry.source else entry.id
        if entry.id not in kb.intents:
            errors.append(f"{where} : intention inconnue {entry.id}")
            continue
        if len(entry.examples) < MIN_EXAMPLES:
            errors.append(f"{where} : {len(entry.examples)} phrasés (au moins {MIN_EXAMPLES})")
        linked = [entry.howto, entry.families, entry.why]
        for other in entry.related + [i for i in linked if i]:
            if other not in kb.intents:
                errors.append(f"{where} : intention liée inconnue {other}")
        if len(entry.title) > TITLE_MAX:
            warnings.append(f"{where} : titre de plus de {TITLE_MAX} caractères")
        if entry.kind in ("faq", "dialogue"):
            errors.extend(_check_answer(kb, entry.id, where))
    for intent_id, info in kb.intents.items():
        if info.kind in ("faq", "dialogue", "action", "query") and intent_id not in kb.entries:
            errors.append(f"{intent_id} : aucune entrée dans knowledge/")
    owners: dict[str, set[str]] = defaultdict(set)
    for entry in kb.entries.values():
        for example in entry.examples:
            owners[fold(example)].add(entry.id)
    for example in kb.out_of_scope_examples:
        owners[fold(example)].add("out_of_scope")
    for text, ids in owners.items():
        if len(ids) > 1:
            errors.append(f"phrasé sous plusieurs intentions ({', '.join(sorted(ids))}) : {text}")
    for path in held_out:
        errors.extend(near_copies(kb, path))
    notes.extend(_close_pairs(kb))
    if self_test:
        notes.extend(_self_test(kb))
    notes.insert(
        0,
        f"{len(kb.entries)} entrées, "
        f"{sum(len(e.examples) for e in kb.entries.values())} phrasés, "
        f"{len(kb.out_of_scope_examples)} exemples hors périmètre.",
    )
    return errors, warnings, notes


def near_copies(kb: KnowledgeBase, path: Path) -> list[str]:
    """Phrasings that copy or nearly copy a line of an evaluation set with the same intent:
    the sets measure understanding only while they stay out of training."""
    phrasings: dict[str, list[str]] = {
        e.id: [fold(x) for x in e.examples] for e in kb.entries.values()
    }
    phrasings["out_of_scope"] = [fold(x) for x in kb.out_of_scope_examples]
    found: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        item = json.loads(line)
        text = fold(str(item.get("text", "")))
        candidates = phrasings.get(str(item.get("intent")), [])
        if len(text.split()) < COPY_MIN_WORDS or not candidates:
            continue
        hit = process.extractOne(text, candidates, scorer=fuzz.ratio, score_cutoff=COPY_RATIO)
        if hit is not None:
            found.append(
                f"{item['intent']} : « {hit[0]} » recopie presque {path.name}:{number} "
                f"(« {text} », ratio {hit[1]:.0f})"
            )
    return found


def _check_answer(kb: KnowledgeBase, intent_id: str, where: str) -> list[str]:
    problems: list[str] = []
    try:
        for today in (date(2026, 11, 28), date(2027, 8, 20), date(2027, 9, 3)):
            rendered = kb.render(intent_id, today)
    except (TemplateError, KnowledgeError) as error:
        return [f"{where} : le gabarit ne se rend pas ({error})"]
    if not rendered.strip():
        problems.append(f"{where} : réponse vide")
    for url in _HREF.findall(rendered):
        if not url.startswith("https://") or " " in url:
            problems.append(f"{where} : lien invalide {url}")
    for tag in _ANY_TAG.findall(rendered):
        if not _ALLOWED_TAGS.fullmatch(tag):
            problems.append(f"{where} : balise non prise en charge par Telegram {tag}")
    if len(rendered) > 4096:
        problems.append(f"{where} : réponse de plus de 4096 caractères")
    return problems


def _close_pairs(kb: KnowledgeBase) -> list[str]:
    """Phrasings of two intents so alike that the matcher can hardly tell them apart."""
    labels: list[str] = []
    texts: list[str] = []
    for entry in kb.entries.values():
        for example in entry.examples:
            labels.append(entry.id)
            texts.append(kb.lexicon.rewrite(fold(example)))
    pairs: dict[tuple[str, str], int] = defaultdict(int)
    for i, text in enumerate(texts):
        found = process.extract(
            text, texts, scorer=fuzz.token_sort_ratio, score_cutoff=CLOSE_PAIR, limit=None
        )
        for _, _, j in found:
            if j > i and labels[i] != labels[j]:
                first, second = sorted((labels[i], labels[j]))
                pairs[first, second] += 1
    return [f"phrasés proches entre {a} et {b} : {n}" for (a, b), n in sorted(pairs.items())]


def _self_test(kb: KnowledgeBase, folds: int = 5) -> list[str]:
    """k-fold cross-validation over the knowledge's own phrasings, with the tuning in use."""
    from intents.nlu.matcher import Matcher
    from intents.nlu.tune import split, without
    from intents.nlu.understanding import Understander

    parts = split(kb, folds)
    right = 0
    confusions: dict[tuple[str, str], int] = defaultdict(int)
    for held in parts:
        trained = without(kb, held)
        matcher = Matcher(trained)
        understander = Understander(trained, matcher, None, None)
        for gold, text in held:
            predicted, _ = understander.decide(matcher.analyse(text))
            right += predicted == gold
            if predicted != gold:
                confusions[(gold, predicted)] += 1
    total = sum(len(held) for held in parts)
    lines = [f"validation croisée ({folds} plis) : {right / total:.3f} sur {total} phrasés"]
    for (gold, predicted), count in sorted(confusions.items(), key=lambda x: -x[1])[:15]:
        lines.append(f"  {count} × {gold} → {predicted}")
    return lines
