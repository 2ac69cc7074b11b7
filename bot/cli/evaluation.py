"""`python -m bot eval`: like `rasa test nlu`, figures over a labelled JSONL file."""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bot.core.services import Services
from bot.settings import Settings
from intents.nlu.matcher import OUT_OF_SCOPE


def _load_lines(path: Path) -> list[dict[str, Any]]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise LookupError(f"{path.name}, ligne {number} : JSON invalide") from None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("text"), str)
            or not isinstance(item.get("intent"), str)
        ):
            raise LookupError(f"{path.name}, ligne {number} : champs text et intent attendus")
        items.append(item)
    return items


def _accuracy(rows: list[tuple[str, str]]) -> float | None:
    return round(sum(1 for g, p in rows if g == p) / len(rows), 4) if rows else None


def evaluate(
    path: Path, settings: Settings, store: Services, structure: str | None, *, started: float
) -> dict[str, Any]:
    """Understand every line of the file with the assistant and measure how it did."""
    from bot.core.assistant import Assistant

    items = _load_lines(path)
    load_started = time.perf_counter()
    assistant = Assistant.create(settings, store)
    load_seconds = time.perf_counter() - load_started
    kinds = {i: info.kind for i, info in assistant.kb.intents.items()}
    latencies: list[float] = []
    rows: list[dict[str, Any]] = []
    for item in items:
        begin = time.perf_counter()
        u = assistant.understand(item["text"], structure)
        latencies.append((time.perf_counter() - begin) * 1000)
        rows.append(
            {
                "text": item["text"],
                "gold": item["intent"],
                "predicted": u.intent,
                "confidence": u.confidence,
                "gold_entities": item.get("entities"),
                "entities": u.entities,
            }
        )
    in_scope = [r for r in rows if r["gold"] != OUT_OF_SCOPE]
    oos = [r for r in rows if r["gold"] == OUT_OF_SCOPE]

    def by_kind(*wanted: str) -> float | None:
        return _accuracy(
            [(r["gold"], r["predicted"]) for r in in_scope if kinds.get(r["gold"]) in wanted]
        )

    with_entities = [r for r in rows if r["gold_entities"]]
    entity_hits = [r for r in with_entities if r["entities"] == r["gold_entities"]]
    confusions = Counter((r["gold"], r["predicted"]) for r in rows if r["gold"] != r["predicted"])
    latencies.sort()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":
        peak_kb //= 1024
    return {
        "file": str(path),
        "lines": len(rows),
        "accuracy_in_scope": _accuracy([(r["gold"], r["predicted"]) for r in in_scope]),
        "accuracy_faq_dialogue": by_kind("faq", "dialogue"),
        "accuracy_action_query": by_kind("action", "query"),
        "oos_rejected": round(sum(1 for r in oos if r["predicted"] == OUT_OF_SCOPE) / len(oos), 4)
        if oos
        else None,
        "in_scope_wrongly_rejected": round(
            sum(1 for r in in_scope if r["predicted"] == OUT_OF_SCOPE) / len(in_scope), 4
        )
        if in_scope
        else None,
        "entity_exact_match": round(len(entity_hits) / len(with_entities), 4)
        if with_entities
        else None,
        "entity_lines": len(with_entities),
        "confusions": [
            {"gold": g, "predicted": p, "count": n} for (g, p), n in confusions.most_common(20)
        ],
        "errors": [
            {
                "text": r["text"],
                "gold": r["gold"],
                "predicted": r["predicted"],
                "confidence": r["confidence"],
            }
            for r in rows
            if r["gold"] != r["predicted"]
        ],
        "entity_errors": [
            {"text": r["text"], "gold": r["gold_entities"], "predicted": r["entities"]}
            for r in with_entities
            if r["entities"] != r["gold_entities"]
        ],
        "timing": {
            "load_seconds": round(load_seconds, 3),
            "total_seconds": round(time.perf_counter() - started, 3),
            "latency_median_ms": round(statistics.median(latencies), 3) if latencies else None,
            "latency_p99_ms": round(
                latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3
            )
            if latencies
            else None,
            "peak_memory_mb": round(peak_kb / 1024, 1),
        },
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as French text: the mistakes first, then the figures."""

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f} %"

    lines = [f"Évaluation de {report['file']} ({report['lines']} lignes)", ""]
    if report["errors"]:
        lines.append("Lignes mal comprises :")
        for error in report["errors"]:
            lines.append(
                f"  [{error['gold']} → {error['predicted']} {error['confidence']:.2f}] "
                f"{error['text']}"
            )
        lines.append("")
    if report["entity_errors"]:
        lines.append("Entités fausses :")
        for error in report["entity_errors"]:
            lines.append(f"  {error['text']} : attendu {error['gold']}, lu {error['predicted']}")
        lines.append("")
    if report["confusions"]:
        lines.append("Confusions (attendu → prédit) :")
        for c in report["confusions"]:
            lines.append(f"  {c['count']} × {c['gold']} → {c['predicted']}")
        lines.append("")
    t = report["timing"]
    lines += [
        f"Précision top-1 (dans le périmètre)      : {pct(report['accuracy_in_scope'])}",
        f"Précision top-1 faq + dialogue           : {pct(report['accuracy_faq_dialogue'])}",
        f"Précision top-1 actions + requêtes       : {pct(report['accuracy_action_query'])}",
        f"Hors périmètre rejetés                   : {pct(report['oos_rejected'])}",
        f"Dans le périmètre rejetés à tort         : {pct(report['in_scope_wrongly_rejected'])}",
        f"Entités exactes ({report['entity_lines']} lignes)               : "
        f"{pct(report['entity_exact_match'])}",
        f"Chargement : {t['load_seconds']} s ; latence médiane {t['latency_median_ms']} ms, "
        f"p99 {t['latency_p99_ms']} ms ; mémoire max {t['peak_memory_mb']} Mo",
    ]
    return "\n".join(lines)
