"""French text normalisation shared by the matcher and the entity readers."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import snowballstemmer

# Control characters and zero-width marks that users paste by accident.
_INVISIBLE = re.compile(r"[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202f\ufeff]")
_APOSTROPHES = re.compile(r"[’‘`´ʼ]")
_NON_WORD = re.compile(r"[^a-z0-9/+ ]+")
# « parents+eleves », « ce1/ce2 »: two words joined by a sign (« /debloquer », a command, and
# « 1+1 » keep theirs).
_JOINED = re.compile(r"(?<=[a-z0-9])[+/](?=[a-z])")
_SPACES = re.compile(r"\s+")
# Letters repeated three times or more ("merciiii", "svppp") are shouted, not spelled.
_REPEATS = re.compile(r"([a-z])\1{2,}")


# The stems of what a director tells the assistant to do, or not to do (« n'y touche pas »).
_TASK_STEMS = (
    "bloqu|debloqu|rattach|detach|supprim|retir|enlev|touch|mets|met|ajout|affect|vire|degag|fai"
)
_POLITENESS = r"(?: s il te plait| s il vous plait| stp| svp)?"
# An order refused, in folded text (« ne supprime rien », « je ne veux pas détacher… », « n'y
# touche pas »): a verb of the tasks, or of wanting, after « ne » and before its negation.
# « les parents ne peuvent pas se connecter » states a fact, and is none.
REFUSED_ORDER = (
    rf"\bn(?:e)? (?:(?:le|la|les|l|lui|leur|y|en|me|m) )*(?:{_TASK_STEMS}|veu|voudr|fau)\w* "
    r"(?:\w+ )?(?:pas|rien|jamais|personne)\b"
)
# …with the politeness that goes with it (« ne bloque rien stp »): no request either.
_REFUSED_REQUEST = re.compile(REFUSED_ORDER + r"(?: du tout)?" + _POLITENESS)
# Nothing to do at all (« ne supprime rien », « ne touche à rien du tout, stp »): said before
# what is asked instead (« …, montre moi juste les groupes »), it names no task.
_NOTHING_TO_DO = re.compile(
    rf"\bn(?:e)? (?:(?:y|en) )?(?:{_TASK_STEMS})\w* (?:a )?rien(?: du tout)?{_POLITENESS}\b"
)


def without_nothing_to_do(text: str) -> str:
    """The message less « ne supprime rien »-like words, when something else is asked."""
    folded = fold(text)
    rest = _NOTHING_TO_DO.sub(" ", folded)
    return rest if rest != folded and len(rest.split()) >= 2 else text


class _CombiningMarks(dict[int, int | None]):
    """str.translate table that drops combining marks (accents once decomposed), filled as
    characters are met: a character looked up in C, not in a Python loop, once known."""

    def __missing__(self, code: int) -> int | None:
        kept = None if unicodedata.combining(chr(code)) else code
        if len(self) < 8192:  # a flood of rare characters does not grow it without end
            self[code] = kept
        return kept


_WITHOUT_MARKS = _CombiningMarks()


@lru_cache(maxsize=20_000)  # the same names are folded for every message that names someone
def fold(text: str) -> str:
    """Lower case, accents removed, apostrophes and punctuation turned into spaces."""
    text = _INVISIBLE.sub(" ", text)
    text = unicodedata.normalize("NFKD", text).translate(_WITHOUT_MARKS)
    text = text.lower().replace("œ", "oe").replace("æ", "ae")
    text = _APOSTROPHES.sub("'", text)
    text = text.replace("'", " ").replace("-", " ").replace("_", " ")
    text = _NON_WORD.sub(" ", text)
    text = _REPEATS.sub(r"\1\1", text)
    return _SPACES.sub(" ", text).strip()


def apart(folded: str) -> str:
    """The folded text with words joined by a sign read apart, for naming who and what (the
    classifier learnt its features with the signs kept)."""
    return _JOINED.sub(" ", folded)


@dataclass(frozen=True)
class NamedPatterns:
    """Named alternations of the lexicon (concepts, services, orders), each with the letters
    its alternatives open with: a text that holds none of them cannot match, and looking for
    a few letters costs far less than a regex tried at every position of a long message."""

    # (name, pattern, openings); openings is None when an alternative opens otherwise.
    entries: tuple[tuple[str, re.Pattern[str], tuple[str, ...] | None], ...]

    def found(self, text: str) -> list[str]:
        """Names of the patterns that occur in the text, in the lexicon's order."""
        return [
            name
            for name, pattern, openings in self.entries
            if (openings is None or any(o in text for o in openings)) and pattern.search(text)
        ]


NO_PATTERNS = NamedPatterns(())


@dataclass(frozen=True)
class Lexicon:
    """Rewrites, stop words and cue phrases, loaded from knowledge/lexicon.yaml."""

    word_rewrites: dict[str, str]
    # Every multi-word rewrite in one alternation (longest first), applied in one pass.
    phrase_pattern: re.Pattern[str] | None
    phrase_targets: dict[str, str]
    stopwords: frozenset[str]
    # Cue phrases with a space either side: found as whole words in a text padded alike.
    howto_cues: tuple[str, ...]
    request_cues: tuple[str, ...]
    profiles: dict[str, tuple[str, ...]]
    # A request cue followed by one of these asks to be told, not to act (« pourriez-vous
    # m'indiquer… », « tu peux m'expliquer… »): that request cue does not count.
    asking_pattern: re.Pattern[str] | None = None
    # A verb of the request cues after a subject pronoun (« je fais comment ») is no order.
    conjugated_pattern: re.Pattern[str] | None = None
    concepts: NamedPatterns = NO_PATTERNS
    anchors: frozenset[str] = frozenset()
    # Services the document does not cover: a message naming one is out of scope unless the
    # intent's own answer speaks of it.
    services: NamedPatterns = NO_PATTERNS
    # Orders the document does not cover (« crée un groupe »), where an order opens.
    orders: NamedPatterns = NO_PATTERNS
    # An order opens the message or a clause (« …, alors bloque les parents »): one of the
    # lexicon's `imperatives` there, not a noun made of it (« rattachement », « inscription »).
    imperative_pattern: re.Pattern[str] | None = None
    # Or one of them anywhere, with its object pronoun after it, as only an imperative has
    # it (« …n'est plus chez nous vire le de la liste », « …, ajoute les tous au groupe »).
    pronoun_imperative_pattern: re.Pattern[str] | None = None
    # Infinitives of those verbs not in -er or -ir (« mettre », « inscrire »).
    infinitives: frozenset[str] = frozenset()
    # The word a request cue asks for, past any clitic (« tu peux les bloquer » → bloquer).
    requested_pattern: re.Pattern[str] | None = None
    # One of the orders' verbs said to the assistant (« tu bloques les parents ? », « vous me
    # détachez M. Petit ? »), not after « si » or « quand » (« si tu bloques, … »).
    addressed_pattern: re.Pattern[str] | None = None
    # A hash of the data it was read from: what a model built with it depends on.
    fingerprint: str = ""

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Lexicon:
        words: dict[str, str] = {}
        phrases: dict[str, str] = {}
        for source, target in data.get("rewrites", {}).items():
            key = fold(str(source))
            value = fold(str(target))
            if " " in key:
                phrases[key] = value
            else:
                words[key] = value
        pattern = re.compile(rf"\b{_any_of(phrases)}\b") if phrases else None
        stop: set[str] = set()
        for word in data.get("stopwords", []):
            stop.update(fold(str(word)).split())
        requests = [fold(c) for c in data.get("request_cues", [])]
        asking = [fold(c) for c in data.get("asking_cues", [])]
        asking_pattern = (
            re.compile(rf"\b{_any_of(requests)} {_any_of(asking)}\b")
            if requests and asking
            else None
        )
        # « je fais comment », « on le met en place »: a verb of the request cues after its
        # subject is conjugated, not an order (an order has no subject).
        verbs = [fold(v) for v in data.get("order_verbs", [])]
        subjects = [fold(w) for w in data.get("subjects", [])]
        clitics = [fold(w) for w in data.get("clitics", [])]
        between = f"(?: {_any_of(clitics)})*" if clitics else ""
        conjugated = (
            re.compile(rf"\b{_any_of(subjects)}{between} {_any_of(verbs)}\b")
            if verbs and subjects
            else None
        )
        imperatives = data.get("imperatives", {})
        # An order opens the message, or follows one of these words (« stp », « merci de »);
        # with none listed, only the opening counts (an empty group would match anywhere).
        after = [fold(w) for w in imperatives.get("after", [])]
        opening = rf"(?:^|\b{_any_of(after)}\s)" if after else "^"
        imperative = (
            re.compile(
                rf"{opening}(?:{'|'.join(imperatives['verbs'])})"
                r"(?<!ment)(?<!ments)(?<!tion)(?<!tions)\b"
            )
            if imperatives.get("verbs")
            else None
        )
        requested = re.compile(rf"\b{_any_of(requests)}{between} (\w+)") if requests else None
        # The orders' verbs (not the « /… » commands), never a noun made of them.
        tasks = "|".join(v for v in imperatives.get("verbs", []) if not v.startswith("/"))
        verb = rf"(?:{tasks})(?<!ment)(?<!ments)(?<!tion)(?<!tions)\b"
        objects = [fold(w) for w in imperatives.get("objects", [])]
        followers = [fold(w) for w in imperatives.get("after_object", [])]
        pronoun_imperative = (
            re.compile(
                rf"\b{verb}(?= {_any_of(objects)}(?: tous| toutes)?(?: {_any_of(followers)}\b|$))"
            )
            if objects and followers and tasks
            else None
        )
        addressed_data = data.get("addressed", {})
        listeners = [fold(w) for w in addressed_data.get("subjects", [])]
        conditions = [fold(w) for w in addressed_data.get("not_after", [])]
        addressed = (
            re.compile(
                "".join(rf"(?<!\b{c} )" for c in conditions)
                + rf"\b{_any_of(listeners)}{between} {verb}"
            )
            if listeners and tasks
            else None
        )
        return cls(
            imperative_pattern=imperative,
            pronoun_imperative_pattern=pronoun_imperative,
            requested_pattern=requested,
            addressed_pattern=addressed,
            infinitives=frozenset(fold(w) for w in imperatives.get("infinitives", [])),
            asking_pattern=asking_pattern,
            conjugated_pattern=conjugated,
            word_rewrites=words,
            phrase_pattern=pattern,
            phrase_targets=phrases,
            stopwords=frozenset(stop),
            howto_cues=tuple(f" {fold(c)} " for c in data.get("howto_cues", [])),
            request_cues=tuple(f" {fold(c)} " for c in data.get("request_cues", [])),
            profiles={k: tuple(fold(w) for w in v) for k, v in data.get("profiles", {}).items()},
            anchors=frozenset(fold(str(a)) for a in data.get("anchors", [])),
            concepts=_patterns(data.get("concepts", {})),
            services=_patterns(data.get("uncovered_services", {})),
            orders=_patterns(
                data.get("uncovered_orders", {}),
                opening=_any_of([*(fold(w) for w in data.get("order_openers", [])), *requests]),
            ),
            fingerprint=hashlib.sha256(
                json.dumps(data, sort_keys=True, ensure_ascii=False, default=str).encode()
            ).hexdigest()[:16],
        )

    def imperative(self, text: str) -> re.Match[str] | None:
        """Where the normalized text opens an order (« bloque… », « …, alors détache… »,
        « …, vire le de la liste »); the match ends on the verb."""
        found = self.imperative_pattern.search(text) if self.imperative_pattern else None
        if found is None and self.pronoun_imperative_pattern is not None:
            found = self.pronoun_imperative_pattern.search(text)
        return found

    def requested(self, text: str) -> str | None:
        """The word a request cue of the normalized text asks for, its verb when there is one
        (« peux tu bloquer… » → bloquer, « merci de les rouvrir » → rouvrir)."""
        found = self.requested_pattern.search(text) if self.requested_pattern else None
        return found.group(1) if found else None

    def is_infinitive(self, verb: str) -> bool:
        """Whether the verb opening an order is an infinitive (« supprimer »), not an imperative
        (« supprime »)."""
        return verb.endswith(("er", "ir")) or verb in self.infinitives

    def concepts_in(self, text: str) -> list[str]:
        """Names of the concepts whose patterns occur in the normalized text."""
        return self.concepts.found(text)

    def services_in(self, text: str) -> frozenset[str]:
        """Names of the uncovered services the normalized text speaks of."""
        return frozenset(self.services.found(text))

    def orders_in(self, text: str) -> frozenset[str]:
        """Names of the uncovered orders the normalized text gives."""
        return frozenset(self.orders.found(text))

    def _phrases(self, text: str) -> str:
        if self.phrase_pattern is None:
            return text
        return self.phrase_pattern.sub(lambda m: self.phrase_targets[m.group(0)], text)

    def rewrite(self, folded: str) -> str:
        """Apply SMS, misspelling and synonym rewrites to already folded text."""
        folded = self._phrases(folded)
        words = [self.word_rewrites.get(word, word) for word in folded.split()]
        # A word rewrite may produce a phrase that itself has a rewrite ("edu" "conect").
        return self._phrases(" ".join(words))

    def asks_to_act(self, text: str) -> bool:
        """Whether a request cue occurs, other than one that asks to be told something."""
        if self.asking_pattern is not None:
            text = self.asking_pattern.sub(" , ", text)
        if self.conjugated_pattern is not None:
            text = self.conjugated_pattern.sub(" , ", text)
        return self.has_cue(_REFUSED_REQUEST.sub(" , ", text), self.request_cues)

    def addressed(self, text: str) -> bool:
        """Whether the normalized text says one of the orders' verbs to the assistant (« tu
        bloques les parents ? »): a request, unless it asks how (the caller checks)."""
        return bool(self.addressed_pattern and self.addressed_pattern.search(text))

    def has_cue(self, text: str, cues: tuple[str, ...]) -> bool:
        """Whether one of the cue phrases (howto_cues, request_cues) occurs as whole words."""
        padded = f" {text} "
        return any(cue in padded for cue in cues)


def _any_of(phrases: Iterable[str]) -> str:
    """A regex group for any of these phrases, the longest first (« edu conect » before
    « conect »)."""
    return "(?:" + "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True)) + ")"


def _patterns(data: dict[str, list[str]], opening: str | None = None) -> NamedPatterns:
    """One compiled alternation per name; with `opening`, found only at the start of the text
    or after one of those words (a clause opener, a request cue), never in mid-phrase (« le
    compte créé à la main »)."""
    compiled = []
    for name, patterns in data.items():
        alternation = "|".join(f"(?:{p})" for p in patterns)
        found: tuple[str, ...] | None = None
        if opening is not None:
            # Found after any of the opening words: no letters every match must hold.
            alternation = rf"(?:^|\b{opening} )(?:{alternation})\b"
        else:
            each = [literal_openings(p) for p in patterns]
            if all(o is not None for o in each):
                found = tuple(o for openings in each if openings for o in openings)
        compiled.append((name, re.compile(alternation), found))
    return NamedPatterns(tuple(compiled))


# What matches no letter: a word boundary, the start, a lookaround with no group inside.
_ZERO_WIDTH = re.compile(r"\\b|\^|\(\?<?[=!](?:[^()\\]|\\.)*\)")
_PLAIN = re.compile(r"[a-z0-9 ]*")
# A group of plain alternatives: « (lev|enlev|retir) ».
_PLAIN_GROUP = re.compile(r"\((?:\?:)?([a-z0-9 ]+(?:\|[a-z0-9 ]+)*)\)")
_OPTIONAL = ("?", "*", "{")


def literal_openings(pattern: str) -> tuple[str, ...] | None:
    """Letters one of which every match of the pattern holds: those it opens with once past
    any zero-width assertion, or each alternative of a plain group it opens with. None when
    it opens otherwise, with fewer than two letters, or is an alternation itself."""
    if _alternates(pattern):
        return None
    at = _past_zero_width(pattern, 0)
    group = _PLAIN_GROUP.match(pattern, at)
    if group is not None:
        if pattern[group.end() : group.end() + 1] in _OPTIONAL:
            return None
        openings = tuple(group.group(1).split("|"))
    else:
        literal = ""
        # Letters on either side of a zero-width assertion follow each other in the text.
        while plain := _letters_at(pattern, at):
            literal += plain
            at = _past_zero_width(pattern, at + len(plain))
        if pattern[at : at + 1] in _OPTIONAL:
            literal = literal[:-1]  # its last letter may be absent
        openings = (literal,)
    return openings if all(len(o) >= 2 for o in openings) else None


def _letters_at(pattern: str, at: int) -> str:
    plain = _PLAIN.match(pattern, at)
    return plain.group(0) if plain else ""


def _past_zero_width(pattern: str, at: int) -> int:
    while (zero := _ZERO_WIDTH.match(pattern, at)) is not None and zero.end() > at:
        at = zero.end()
    return at


def _alternates(pattern: str) -> bool:
    """Whether the pattern has a « | » outside any group or character class."""
    depth, escaped, in_class = 0, False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return True
    return False


_stemmer = snowballstemmer.stemmer("french")


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """Snowball French stem; digits and very short words are kept whole."""
    if len(word) <= 3 or word.isdigit():
        return word
    stemmed: str = _stemmer.stemWord(word)
    return stemmed


# The concepts of the verbs that open an order (« supprime » → order_supprim): what is asked.
ORDER_CONCEPT = "order_"


def order_concept(verb: str) -> str:
    """The concept of a verb that opens an order, « /supprimer » and « supprimer » alike."""
    return ORDER_CONCEPT + stem(verb.lstrip("/"))
