"""Reads what a director's message names — profiles, teachers, classes, groups, accounts —
resolved with rapidfuzz against the speaker's school, never against a fixed list."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process

from intents.domain import BLOCKABLE_PROFILES
from intents.nlu.normalize import REFUSED_ORDER, Lexicon, apart, fold

if TYPE_CHECKING:
    from intents.domain import Group, SchoolClass, User

HONORIFICS = {
    "m",
    "mr",
    "mme",
    "mlle",
    "madame",
    "monsieur",
    "mademoiselle",
    "mmes",
    "mrs",
    "melle",
}
# The small words of compound last names (« D'Almeida », « Van de Velde »): a message holds
# them for other reasons (« l'intervenante d'anglais », « la classe de CP »).
PARTICLES = {"d", "de", "du", "des", "l", "la", "le", "van", "von", "der", "den", "da", "di"}
TEACHER_WORDS = {"maitresse", "maitre", "enseignant", "enseignante", "prof", "instit"}
# Words of a group's name that say nothing about which group is meant.
GROUP_FILLER = {"groupe", "groupes", "de", "des", "du", "l", "la", "le", "les", "d", "a"}
# Where a message's clauses part: punctuation, and the words that turn from what is not to be
# done to what is (« …, par contre Hugo Lambert », « …, seulement les parents »). « sauf »
# opens a clause of its own (« bloque tout le monde sauf les élèves »).
_CLAUSE_BREAK = re.compile(
    r"[.;,:!?]|\b(?:mais|par contre|en revanche|seulement|juste|uniquement)\b|(?=\bsauf\b)",
    re.IGNORECASE,
)
# A clause that says not to do something: a refused order (REFUSED_ORDER), « pas besoin
# de… », « surtout pas… », or one that opens on « pas » (« …, pas les élèves »).
_REFUSED = re.compile(REFUSED_ORDER + r"|\bpas besoin\b|\bsurtout pas\b|^\s*pas\b")
# « …sauf Thomas Petit »: an exception, which the action reads itself (« tous les enseignants
# sauf… »), and a profile left out (« tout le monde sauf les élèves »).
_EXCEPTION = re.compile(r"^\s*sauf\b")


def _sorted_clauses(text: str, *, exceptions: bool) -> tuple[list[str], list[str]]:
    """The message's clauses: those that name targets, and those that say not to touch
    (with the exceptions, « sauf… », when asked)."""
    kept: list[str] = []
    refused: list[str] = []
    for clause in _CLAUSE_BREAK.split(text):
        folded = fold(clause)
        if folded:
            left_out = _REFUSED.search(folded) or (exceptions and _EXCEPTION.search(folded))
            (refused if left_out else kept).append(clause)
    return kept, refused


NAME_SCORE_FLOOR = 82
# A last name typed in full scores at least this much (see _name_score).
FULL_NAME = 0.8
# What a last name typed exactly, with no first name, scores (see _name_score); what a first
# name typed exactly and alone scores (see _first_name_score). Compared within EPSILON.
EXACT_LAST_NAME = 1.0
FIRST_NAME_ALONE = 0.4
EPSILON = 1e-9
# How near a typed word must be to a name for that name to be suggested.
CLOSE_NAME = 70


@dataclass
class Resolution:
    """One slot: the id found, or the candidates to choose from, or the closest names."""

    value: str | None = None
    candidates: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    # Found by part of a name only (a first name, one half of a hyphenated name).
    partial: bool = False
    # Someone the message names fully who is not among the people looked at.
    absent: str | None = None
    # Their id, when they are a removed (pre-deleted or deleted) account of the school.
    removed: str | None = None
    # Several people named in one order (« les comptes de X et Y »).
    several: list[str] = field(default_factory=list)


class EntityReader:
    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self._profile_words = {
            profile: {w for w in words if " " not in w}
            for profile, words in lexicon.profiles.items()
        }
        self._recent: dict[tuple[str, ...], _Ratios] = {}
        self._profile_phrases = {
            profile: [w for w in words if " " in w] for profile, words in lexicon.profiles.items()
        }

    @staticmethod
    def affirmed(text: str) -> str:
        """The message less its clauses that say what not to touch (« ne bloque pas les
        élèves, seulement les parents »): what is named there is not a target. Exceptions
        (« sauf… ») stay: the action reads them. Unchanged when nothing else would remain."""
        kept, refused = _sorted_clauses(text, exceptions=False)
        return " , ".join(kept) if kept and refused else text

    def target_profiles(self, text: str) -> list[str]:
        """The profiles a message names as targets: « bloque tout le monde sauf les élèves »
        is the parents."""
        kept, refused = _sorted_clauses(text, exceptions=True)
        named = self.profiles(" , ".join(kept) if kept and refused else text)
        left = set(named) - set(self.profiles(" , ".join(refused))) if kept else set()
        return sorted(left) if left else named

    # -- profiles --------------------------------------------------------------------------
    def profiles(self, text: str) -> list[str]:
        """ENT profiles named by the message (Relative, Student), sorted."""
        folded = f" {apart(fold(text))} "
        words = set(folded.split())
        found: set[str] = set()
        for profile in BLOCKABLE_PROFILES:
            if words & self._profile_words.get(profile, set()) or any(
                f" {p} " in folded for p in self._profile_phrases.get(profile, [])
            ):
                found.add(profile)
        if not found:
            both = self._profile_words.get("both", set())
            if words & both or any(
                f" {p} " in folded for p in self._profile_phrases.get("both", [])
            ):
                found = set(BLOCKABLE_PROFILES)
        return sorted(found)

    # -- people ----------------------------------------------------------------------------
    def person(self, text: str, people: list[User]) -> Resolution:
        """The person of `people` the message names (last name, first + last, typos…)."""
        words = fold(text).split()
        tokens = [t for t in words if t not in HONORIFICS]
        if not tokens or not people:
            return Resolution()
        ratios = self._ratios(tokens)
        scored: list[tuple[float, User]] = []
        for person in people:
            score = _name_score(
                ratios, fold(person.first_name).split(), fold(person.last_name).split()
            )
            if score:
                scored.append((score, person))
        # A last name only guessed at (« des petits » for Thomas Petit), no first name with it.
        guessed = bool(scored) and max(s for s, _ in scored) < EXACT_LAST_NAME - EPSILON
        if not scored or guessed:
            # A first name alone (« Karim », « marie helene ») names whoever bears it; a word
            # after « Mme » or « M. » is a last name (« Mme Olivier » is not Olivier Caron).
            surnames = {w for at, w in enumerate(words) if at and words[at - 1] in HONORIFICS}
            firsts = (
                ratios if not surnames else self._ratios([t for t in tokens if t not in surnames])
            )
            by_first = [(_first_name_score(firsts, fold(p.first_name).split()), p) for p in people]
            if not scored:
                scored = [(score, p) for score, p in by_first if score]
            elif exact := [p.id for s, p in by_first if s >= FIRST_NAME_ALONE - EPSILON]:
                # « mets karim ds la classe des petits »: a first name typed exactly against a
                # last name guessed at; the director chooses.
                guesses = [p.id for _, p in sorted(scored, key=lambda pair: -pair[0])]
                return Resolution(candidates=list(dict.fromkeys(exact + guesses)), partial=True)
        if not scored:
            return Resolution(suggestions=self._closest(ratios, people))
        scored.sort(key=lambda pair: -pair[0])
        top = scored[0][0]
        best = [p for s, p in scored if s >= top - EPSILON]
        partial = top < FULL_NAME
        if len(best) == 1:
            return Resolution(value=best[0].id, partial=partial)
        return Resolution(candidates=[p.id for p in best], partial=partial)

    def _ratios(self, tokens: list[str]) -> _Ratios:
        """The name-part scores of these words: one order reads the same words several
        times (against the teachers, then everyone, then part by part)."""
        key = tuple(tokens)
        ratios = self._recent.get(key)
        if ratios is None:
            if len(self._recent) >= 64:
                self._recent.clear()
            ratios = self._recent[key] = _Ratios(tokens)
        return ratios

    def _closest(self, ratios: _Ratios, people: list[User]) -> list[str]:
        """Names near what was typed; none when nothing typed looks like a name."""
        if not ratios.words:
            return []

        def nearness(person: User) -> float:
            parts = fold(person.full_name).split() or [""]
            return max(ratios.nearest(part) for part in parts)

        near = [(nearness(p), p) for p in people]
        near = [pair for pair in near if pair[0] >= CLOSE_NAME]
        near.sort(key=lambda pair: -pair[0])
        return [p.id for _, p in near[:3]]

    def teacher_of_class(
        self, text: str, teachers: list[User], classes: list[SchoolClass]
    ) -> Resolution:
        """« la maîtresse de CP » → the teacher attached to that class."""
        folded = fold(text)
        if not any(word in folded.split() for word in TEACHER_WORDS):
            return Resolution()
        school_class = self.school_class(text, classes)
        if school_class.value is None:
            return Resolution()
        found = [t.id for t in teachers if school_class.value in t.classes]
        if len(found) == 1:
            return Resolution(value=found[0])
        if found:
            return Resolution(candidates=found)
        return Resolution()

    # -- classes ---------------------------------------------------------------------------
    def school_class(self, text: str, classes: list[SchoolClass]) -> Resolution:
        """The class named: « CP A », « cp-a », « ce 2 », « grande section », « les CM2 »…"""
        tokens = class_tokens(text)
        if not tokens or not classes:
            return Resolution()
        best_score = 0.0
        scored: list[tuple[float, SchoolClass]] = []
        for school_class in classes:
            score = _class_score(
                tokens, fold(school_class.name).split(), fold(school_class.level).split()
            )
            if score > 0:
                scored.append((score, school_class))
                best_score = max(best_score, score)
        if not scored:
            return Resolution()
        best = [c for s, c in scored if s >= best_score - EPSILON]
        if len(best) == 1:
            return Resolution(value=best[0].id)
        return Resolution(candidates=[c.id for c in best])

    # -- groups ----------------------------------------------------------------------------
    def group(self, text: str, groups: list[Group]) -> Resolution:
        """The group named, by its distinctive words (« APE », « chorale », « 2021 »…)."""
        tokens = [t for t in fold(text).split() if t not in GROUP_FILLER]
        joined = " ".join(tokens)
        if not tokens or not groups:
            return Resolution()
        # A word shared by many group names (« école ») says less than a rare one.
        frequency: dict[str, int] = {}
        names = {g.id: [t for t in fold(g.name).split() if t not in GROUP_FILLER] for g in groups}
        for words in names.values():
            for word in set(words):
                frequency[word] = frequency.get(word, 0) + 1
        scored: list[tuple[float, Group]] = []
        for group in groups:
            words = names[group.id]
            if not words:
                continue
            score = 0.0
            for word in words:
                weight = 1.0 / frequency[word]
                if word in tokens:
                    score += weight
                elif len(word) >= 4 and any(fuzz.ratio(word, t) >= 85 for t in tokens):
                    score += 0.8 * weight
                elif len(word) == 4 and word.isdigit() and word[2:] in tokens:
                    score += 0.8 * weight  # « APE 21-22 » for « APE 2021-2022 »
            compact = "".join(words)
            if compact in joined.replace(" ", ""):
                score += 1.0
            if score > 0:
                scored.append((score, group))
        if not scored:
            return Resolution(suggestions=[g.id for g in groups[:3]])
        scored.sort(key=lambda pair: -pair[0])
        top = scored[0][0]
        best = [g for s, g in scored if s >= top - EPSILON]
        if len(best) == 1:
            return Resolution(value=best[0].id)
        return Resolution(candidates=[g.id for g in best])


_SPLIT_LEVEL = re.compile(r"\b(ce|cm)\s+([12])\b")
_SECTIONS = {
    "toute petite section": "tps",
    "tres petite section": "tps",
    "petite section": "ps",
    "moyenne section": "ms",
    "grande section": "gs",
    "petits moyens": "ps ms",
    "moyens grands": "ms gs",
    "petits": "ps",
    "moyens": "ms",
    "grands": "gs",
}
_SECTION = re.compile(r"\b(" + "|".join(sorted(_SECTIONS, key=len, reverse=True)) + r")\b")


def class_tokens(text: str) -> list[str]:
    """The message's words with class levels in one form: « ce 2 » → ce2, « grande section »
    → gs."""
    folded = _SPLIT_LEVEL.sub(r"\1\2", apart(fold(text)))
    return _SECTION.sub(lambda m: _SECTIONS[m.group(1)], folded).split()


def class_mention(text: str) -> str | None:
    """A class level the message names, known to the school or not (« CM3 »)."""
    for token in class_tokens(text):
        if re.fullmatch(r"(tps|ps|ms|gs|cp|ce\d|cm\d|ulis|clis)", token):
            return token.upper()
    return None


class _Ratios:
    """How well the message's words match name parts, each part scored once per message
    (parents and children share last names; made-up test names share « test »)."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.unique = list(dict.fromkeys(tokens))
        # The words that may be a name for a suggestion.
        self.words = [t for t in tokens if len(t) >= 3]
        self._best: dict[str, float] = {}
        self._nearest: dict[str, float] = {}
        # The words of about a length, by that length: a school's names share few lengths.
        self._near: dict[int, list[str]] = {}

    def best(self, part: str) -> float:
        """The best ratio of a name part to a word of the message of about its length."""
        score = self._best.get(part)
        if score is None:
            score = self._best[part] = self._score(part)
        return score

    def _score(self, part: str) -> float:
        if len(part) <= 3:
            return 100.0 if part in self.tokens else 0.0
        near = self._near.get(len(part))
        if near is None:
            near = self._near[len(part)] = [t for t in self.unique if abs(len(t) - len(part)) <= 3]
        found = process.extractOne(part, near, scorer=fuzz.ratio, processor=None)
        return float(found[1]) if found else 0.0

    def nearest(self, part: str) -> float:
        """The best ratio of a name part to any word that may be a name."""
        score = self._nearest.get(part)
        if score is None:
            found = process.extractOne(part, self.words, scorer=fuzz.ratio, processor=None)
            score = self._nearest[part] = float(found[1]) if found else 0.0
        return score


def _name_score(ratios: _Ratios, first: list[str], last: list[str]) -> float:
    """How surely the message's words name this person: 0 when they do not."""
    last_hits = [ratios.best(part) for part in last]
    if not last_hits or min(last_hits) < NAME_SCORE_FLOOR:
        # Hyphenated or compound last names may be typed in part (« Vasseur »), but that
        # part alone scores below any full name, and less again than a full name + first.
        named = [hit for part, hit in zip(last, last_hits, strict=True) if part not in PARTICLES]
        if len(last) > 1 and max(named, default=0) >= 95:
            last_score = 0.6
        else:
            return 0.0
    else:
        # Every part of a compound last name found says more than a shorter name it holds
        # (« Mme Vasseur-Lambert » is not Hugo Lambert, whose whole last name is there too).
        last_score = sum(last_hits) / (100.0 * len(last_hits)) + 0.05 * (len(last) - 1)
    first_hits = [ratios.best(part) for part in first]
    first_score = 0.0
    if first_hits and min(first_hits) >= NAME_SCORE_FLOOR:
        first_score = 0.5 * sum(first_hits) / (100.0 * len(first_hits))
    return last_score + first_score


def _first_name_score(ratios: _Ratios, first: list[str]) -> float:
    """A first name typed alone: every part of it found (« marie helene »)."""
    if not first or any(len(part) < 3 for part in first):
        return 0.0
    hits = [ratios.best(part) for part in first]
    return FIRST_NAME_ALONE * sum(hits) / (100.0 * len(hits)) if min(hits) >= 90 else 0.0


_LEVEL = re.compile(r"^(tps|ps|ms|gs|cp|ce1|ce2|cm1|cm2|ulis|clis)$")


def _class_score(tokens: list[str], name: list[str], level: list[str]) -> float:
    """Longest run of the class name found in the message; a name found whole scores above
    any part, the longer of two whole names higher (« au cp-ce1 »: CP-CE1, not CP)."""
    whole = 1.0 + len(name)
    if len(name) > 1 and "".join(name) in tokens:
        return whole  # « cp2 » for « CP 2 », « cpa » for « CP A »
    best = 0.0
    for start, token in enumerate(tokens):
        if token != name[0] and not (_LEVEL.match(token) and token in name):
            continue
        offset = name.index(token)
        run = 0
        while (
            start + run < len(tokens)
            and offset + run < len(name)
            and tokens[start + run] == name[offset + run]
        ):
            run += 1
        best = max(best, whole if run == len(name) else run / len(name))
    if not best and level:
        hits = sum(1 for part in level if part in tokens and _LEVEL.match(part))
        best = 0.5 * hits / len(level)
    return best
