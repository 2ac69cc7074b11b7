"""`python -m bot eval`: like `rasa test nlu`, figures over a labelled JSONL file."""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.core.services import Services
from bot.settings import Settings
from intents.nlu.matcher import OUT_OF_SCOPE

if TYPE_CHECKING:
    from bot.core.assistant import Assistant


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


def _share(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def _figures(rows: list[dict[str, Any]], kinds: dict[str, str]) -> dict[str, float | None]:
    """Top-1 and rejection figures of predictions (gold, predicted) over the lines."""
    in_scope = [r for r in rows if r["gold"] != OUT_OF_SCOPE]
    oos = [r for r in rows if r["gold"] == OUT_OF_SCOPE]

    def by_kind(*wanted: str) -> float | None:
        return _accuracy(
            [(r["gold"], r["predicted"]) for r in in_scope if kinds.get(r["gold"]) in wanted]
        )

    return {
        "accuracy_in_scope": _accuracy([(r["gold"], r["predicted"]) for r in in_scope]),
        "accuracy_faq_dialogue": by_kind("faq", "dialogue"),
        "accuracy_action_query": by_kind("action", "query"),
        "oos_rejected": _share(sum(r["predicted"] == OUT_OF_SCOPE for r in oos), len(oos)),
        "in_scope_wrongly_rejected": _share(
            sum(r["predicted"] == OUT_OF_SCOPE for r in in_scope), len(in_scope)
        ),
    }


def _latency(latencies: list[float]) -> dict[str, float | None]:
    ordered = sorted(latencies)
    if not ordered:
        return {"latency_median_ms": None, "latency_p99_ms": None}
    return {
        "latency_median_ms": round(statistics.median(ordered), 3),
        "latency_p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
    }


def reliability(rows: list[dict[str, Any]], bins: int = 10) -> dict[str, Any]:
    """How often an answer given with confidence c is right, by tenths of c, and the
    expected calibration error (the gap weighted by how many answers fall in each bin)."""
    table = []
    gap = 0.0
    for index in range(bins):
        low, high = index / bins, (index + 1) / bins
        inside = [
            r
            for r in rows
            if low <= r["confidence"] < high or (index == bins - 1 and r["confidence"] == 1.0)
        ]
        if not inside:
            continue
        confidence = statistics.fmean(r["confidence"] for r in inside)
        right = sum(r["gold"] == r["predicted"] for r in inside) / len(inside)
        gap += len(inside) / len(rows) * abs(right - confidence)
        table.append(
            {
                "from": low,
                "to": high,
                "lines": len(inside),
                "confidence": round(confidence, 3),
                "right": round(right, 3),
            }
        )
    return {"bins": table, "ece": round(gap, 4) if rows else None}


def _baseline(items: list[dict[str, Any]], kinds: dict[str, str], kb: Any) -> dict[str, Any]:
    """The reference model of intents/nlu/baseline.py, trained now on the same knowledge."""
    from intents.nlu.baseline import Baseline

    started = time.perf_counter()
    model = Baseline(kb)
    train_seconds = time.perf_counter() - started
    rows, latencies = [], []
    for item in items:
        begin = time.perf_counter()
        predicted, confidence = model.predict(item["text"])
        latencies.append((time.perf_counter() - begin) * 1000)
        rows.append({"gold": item["intent"], "predicted": predicted, "confidence": confidence})
    return {
        **_figures(rows, kinds),
        "calibration": reliability(rows),
        "timing": {"load_seconds": round(train_seconds, 3), **_latency(latencies)},
    }


def _understand_all(
    assistant: Assistant, items: list[dict[str, Any]], structure: str | None
) -> tuple[list[dict[str, Any]], list[float]]:
    """Every line read by the assistant, with how long each took in milliseconds."""
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
    return rows, latencies


def evaluate(
    path: Path,
    settings: Settings,
    store: Services,
    structure: str | None,
    *,
    started: float,
    baseline: bool = False,
) -> dict[str, Any]:
    """Understand every line of the file with the assistant and measure how it did."""
    from bot.app import settled_heap
    from bot.core.assistant import Assistant

    items = _load_lines(path)
    load_started = time.perf_counter()
    assistant = Assistant.create(settings, store)
    if structure is not None:
        # The directory is read at most every few seconds (ROSTER_SECONDS): its first read,
        # SQL compiled included, is start-up, not the understanding of the first order.
        assistant.understander.roster.warm(store.directory, structure)
    load_seconds = time.perf_counter() - load_started
    kinds = {i: info.kind for i, info in assistant.kb.intents.items()}
    # Timed as the Telegram front ends serve, with what start-up built settled (bot/app.py).
    with settled_heap():
        rows, latencies = _understand_all(assistant, items, structure)
    with_entities = [r for r in rows if r["gold_entities"]]
    entity_hits = [r for r in with_entities if r["entities"] == r["gold_entities"]]
    confusions = Counter((r["gold"], r["predicted"]) for r in rows if r["gold"] != r["predicted"])
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":
        peak_kb //= 1024
    report: dict[str, Any] = {
        "file": str(path),
        "lines": len(rows),
        **_figures(rows, kinds),
        "entity_exact_match": _share(len(entity_hits), len(with_entities)),
        "entity_lines": len(with_entities),
        "calibration": reliability(rows),
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
            **_latency(latencies),
            "peak_memory_mb": round(peak_kb / 1024, 1),
        },
    }
    if baseline:
        report["baseline"] = _baseline(items, kinds, assistant.kb)
    return report


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
    base = report.get("baseline")
    figures = [
        ("Précision top-1 (dans le périmètre)", "accuracy_in_scope"),
        ("Précision top-1 faq + dialogue", "accuracy_faq_dialogue"),
        ("Précision top-1 actions + requêtes", "accuracy_action_query"),
        ("Hors périmètre rejetés", "oos_rejected"),
        ("Dans le périmètre rejetés à tort", "in_scope_wrongly_rejected"),
    ]
    lines.append(f"{'':42}{'assistant':>12}" + (f"{'référence':>12}" if base else ""))
    for label, key in figures:
        row = f"{label:42}{pct(report[key]):>12}"
        if base:
            row += f"{pct(base[key]):>12}"
        lines.append(row)
    ece = report["calibration"]["ece"]
    row = f"{'Erreur de calibration attendue (ECE)':42}{ece if ece is not None else '—':>12}"
    if base:
        row += f"{base['calibration']['ece']:>12}"
    lines.append(row)
    for label, key in (
        ("Latence médiane (ms)", "latency_median_ms"),
        ("Latence p99 (ms)", "latency_p99_ms"),
    ):
        row = f"{label:42}{t[key] if t[key] is not None else '—':>12}"
        if base:
            row += f"{base['timing'][key]:>12}"
        lines.append(row)
    lines += [
        f"Entités exactes ({report['entity_lines']} lignes)".ljust(42)
        + f"{pct(report['entity_exact_match']):>12}",
        "",
        "Fiabilité de la confiance (confiance → part de réponses justes) :",
    ]
    for b in report["calibration"]["bins"]:
        lines.append(
            f"  {b['from']:.1f}–{b['to']:.1f} : {b['lines']:4} lignes, "
            f"confiance {b['confidence']:.2f}, justes {b['right']:.2f}"
        )
    lines.append(
        f"Chargement : {t['load_seconds']} s ; mémoire max {t['peak_memory_mb']} Mo"
        + (f" ; entraînement de la référence : {base['timing']['load_seconds']} s" if base else "")
    )
    return "\n".join(lines)
