"""Phrasings taught in chat by an eRun (« C'est la FAQ… »), brought into knowledge/ for review
(`python -m bot knowledge export-learned`) and checked there (`knowledge check`)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from rapidfuzz import fuzz, process

from intents.check import COPY_MIN_WORDS, COPY_RATIO
from intents.kb import KnowledgeBase
from intents.nlu.analysis import OUT_OF_SCOPE
from intents.nlu.normalize import fold
from intents.nlu.taught import check_teachable

if TYPE_CHECKING:
    from intents.nlu.matcher import Matcher

# The trained model contradicts a learned phrasing when it gives another intent at least this
# sure of itself: calibrated, that answer is then more likely right than not.
CONTRADICTED = 0.5
_KEY = re.compile(r"^examples\s*:\s*(#.*)?$")
_ITEM = re.compile(r"^(\s*)- ")


@dataclass(frozen=True)
class EvalLine:
    """One line of an evaluation set: where it is (file:line), its text and its intent."""

    where: str
    text: str
    intent: str


@dataclass
class ExportReport:
    """What `export_learned` wrote into which file, and what it left out and why."""

    written: dict[Path, list[str]] = field(default_factory=dict)
    # (phrasing, intent, why it was not written), in French.
    skipped: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many phrasings were written."""
        return sum(len(texts) for texts in self.written.values())

    def lines(self) -> list[str]:
        """The report in French, one line per file written and per phrasing left out."""
        out = [
            f"{path.parent.name}/{path.name} : {len(texts)} phrasé(s) ajouté(s)"
            for path, texts in self.written.items()
        ]
        out += [f"non écrit ({intent}) : « {text} » — {why}" for text, intent, why in self.skipped]
        out.append(f"{self.count} phrasé(s) écrit(s), {len(self.skipped)} laissé(s) de côté.")
        return out


def export_learned(pairs: Sequence[tuple[str, str]], knowledge_dir: Path) -> ExportReport:
    """Append each learned (text, intent) to the examples of its topic file, keeping the
    file's comments and layout; phrasings already in the knowledge are left out."""
    kb = KnowledgeBase(knowledge_dir)
    owner: dict[str, str] = {fold(x): OUT_OF_SCOPE for x in kb.out_of_scope_examples}
    for entry in kb.entries.values():
        owner.update({fold(x): entry.id for x in entry.examples})
    report = ExportReport()
    latest: dict[str, tuple[str, str]] = {}  # folded text -> (text, intent), the last taught
    for text, intent in pairs:
        text = " ".join(text.split())
        try:
            check_teachable(kb, intent)
        except ValueError as error:
            report.skipped.append((text, intent, str(error)))
            continue
        key = fold(text)
        if not key:
            report.skipped.append((text, intent, "aucun mot"))
            continue
        previous = latest.pop(key, None)
        if previous is not None and previous[1] != intent:
            report.skipped.append((*previous, f"réappris ensuite comme {intent}"))
        latest[key] = (text, intent)
    wanted: list[tuple[str, str]] = []
    for key, (text, intent) in latest.items():
        if key in owner:
            where = "déjà dans la base" if owner[key] == intent else f"déjà sous {owner[key]}"
            report.skipped.append((text, intent, where))
        else:
            wanted.append((text, intent))
    by_file: dict[Path, list[str]] = {}
    for text, intent in wanted:
        source = kb.entries[intent].source
        assert source is not None  # every entry is read from its file
        by_file.setdefault(source, []).append(text)
    for path, texts in by_file.items():
        _append_examples(path, texts)
        report.written[path] = texts
    return report


def _scalar(text: str) -> str:
    """The text as one YAML scalar that reads back exactly (quoted only when needed)."""
    dumped = yaml.safe_dump([text], allow_unicode=True, width=1_000_000)
    return dumped[2:].rstrip("\n").removesuffix("\n...")


def _append_examples(path: Path, texts: Sequence[str]) -> None:
    """Add items at the end of the file's `examples` list, by text: the comments, order and
    quoting of everything else stay as they are. The file is replaced only once it reads
    back with the new examples."""
    original = path.read_text(encoding="utf-8")
    lines = original.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _KEY.match(line.rstrip("\n"))), None)
    last, indent = -1, ""
    for number in range(start + 1 if start is not None else len(lines), len(lines)):
        line = lines[number].rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = _ITEM.match(line)
        if item and (last < 0 or item.group(1) == indent):
            last, indent = number, item.group(1)
        elif last >= 0 and len(line) - len(line.lstrip()) > len(indent):
            last = number  # a long item folded over several lines
        else:
            break  # the next key: the list is over
    if last < 0:
        raise ValueError(f"{path.name} : pas de liste « examples » en bloc où ajouter")
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    added = [f"{indent}- {_scalar(text)}\n" for text in texts]
    updated = "".join(lines[: last + 1] + added + lines[last + 1 :])
    data = yaml.safe_load(updated)
    examples = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(examples, list) or examples[-len(texts) :] != list(texts):
        raise ValueError(f"{path.name} : les phrasés ne s'ajoutent pas proprement à la liste")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(updated)
    os.replace(temporary, path)


def read_eval_lines(paths: Iterable[Path]) -> list[EvalLine]:
    """The lines of evaluation sets (JSONL: `text`, `intent`), as `knowledge check` reads
    them."""
    found: list[EvalLine] = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                item = json.loads(line)
                text, intent = str(item.get("text", "")), str(item.get("intent", ""))
                found.append(EvalLine(f"{path.name}:{number}", text, intent))
    return found


def check_learned(
    pairs: Sequence[tuple[str, str]],
    kb: KnowledgeBase,
    eval_lines: Iterable[EvalLine],
    matcher: Matcher | None = None,
) -> list[str]:
    """Problems of learned phrasings, in French: one the trained model (without any taught
    phrasing) confidently reads as another intent, one that nearly copies another intent's
    phrasing, one that nearly copies an evaluation line (the rule of `knowledge check`)."""
    from intents.nlu.matcher import Matcher
    from intents.nlu.understanding import Understander

    problems: list[str] = []
    others: list[tuple[str, str]] = [(x, OUT_OF_SCOPE) for x in kb.out_of_scope_examples]
    others += [(x, e.id) for e in kb.entries.values() for x in e.examples]
    folded_others = [fold(x) for x, _ in others]
    lines = list(eval_lines)
    folded_lines = [fold(line.text) for line in lines]
    understander = Understander(kb, matcher or Matcher(kb), None, None)
    for text, intent in pairs:
        folded = fold(text)
        said = f"{intent} : le phrasé appris « {text} »"
        u = understander.understand(text)
        contradicted = u.intent not in (intent, OUT_OF_SCOPE) and intent not in u.choices
        if contradicted and u.confidence >= CONTRADICTED:
            problems.append(
                f"{said} est compris comme {u.intent} par le modèle entraîné "
                f"(confiance {u.confidence:.2f})"
            )
        for index, ratio in _near(folded, folded_others):
            example, owner = others[index]
            if owner != intent:
                problems.append(
                    f"{said} recopie presque un phrasé de {owner} (« {example} », "
                    f"ratio {ratio:.0f})"
                )
        for index, ratio in _near(folded, folded_lines):
            line = lines[index]
            verb = "recopie presque" if line.intent == intent else "contredit"
            problems.append(
                f"{said} {verb} {line.where} (« {line.text} », {line.intent}, ratio {ratio:.0f})"
            )
    return problems


def _near(folded: str, candidates: list[str]) -> list[tuple[int, float]]:
    """The candidates that copy the text or nearly copy it (four words or more, ratio of
    90 or more after accent folding, as `knowledge check` rules for evaluation lines)."""
    if not folded:
        return []
    if len(folded.split()) < COPY_MIN_WORDS:
        return [(i, 100.0) for i, other in enumerate(candidates) if other == folded]
    found = process.extract(
        folded, candidates, scorer=fuzz.ratio, score_cutoff=COPY_RATIO, limit=None
    )
    return [(index, score) for _, score, index in found]
