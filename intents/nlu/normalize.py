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
_SPACES = re.compile(r"\s+")
# Letters repeated three times or more ("merciiii", "svppp") are shouted, not spelled.
_REPEATS = re.compile(r"([a-z])\1{2,}")


@lru_cache(maxsize=20_000)  # the same names are folded for every message that names someone
def fold(text: str) -> str:
    """Lower case, accents removed, apostrophes and punctuation turned into spaces."""
    text = _INVISIBLE.sub(" ", text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower().replace("œ", "oe").replace("æ", "ae")
    text = _APOSTROPHES.sub("'", text)
    text = text.replace("'", " ").replace("-", " ").replace("_", " ")
    text = _NON_WORD.sub(" ", text)
    text = _REPEATS.sub(r"\1\1", text)
    return _SPACES.sub(" ", text).strip()


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
    concepts: tuple[tuple[str, re.Pattern[str]], ...] = ()
    anchors: frozenset[str] = frozenset()
    # Services the document does not cover: a message naming one is out of scope unless the
    # intent's own answer speaks of it.
    services: tuple[tuple[str, re.Pattern[str]], ...] = ()
    # Orders the document does not cover (« crée un groupe »), where an order opens.
    orders: tuple[tuple[str, re.Pattern[str]], ...] = ()
    # An order opens the message or a clause (« …, alors bloque les parents »): one of the
    # lexicon's `imperatives` there, not a noun made of it (« rattachement », « inscription »).
    imperative_pattern: re.Pattern[str] | None = None
    # Infinitives of those verbs not in -er or -ir (« mettre », « inscrire »).
    infinitives: frozenset[str] = frozenset()
    # The word a request cue asks for, past any clitic (« tu peux les bloquer » → bloquer).
    requested_pattern: re.Pattern[str] | None = None
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
        return cls(
            imperative_pattern=imperative,
            requested_pattern=requested,
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
        """Where the normalized text opens an order (« bloque… », « …, alors détache… »)."""
        return self.imperative_pattern.search(text) if self.imperative_pattern else None

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
        return [name for name, pattern in self.concepts if pattern.search(text)]

    def services_in(self, text: str) -> frozenset[str]:
        """Names of the uncovered services the normalized text speaks of."""
        return frozenset(name for name, pattern in self.services if pattern.search(text))

    def orders_in(self, text: str) -> frozenset[str]:
        """Names of the uncovered orders the normalized text gives."""
        return frozenset(name for name, pattern in self.orders if pattern.search(text))

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
        return self.has_cue(text, self.request_cues)

    def has_cue(self, text: str, cues: tuple[str, ...]) -> bool:
        """Whether one of the cue phrases (howto_cues, request_cues) occurs as whole words."""
        padded = f" {text} "
        return any(cue in padded for cue in cues)


def _any_of(phrases: Iterable[str]) -> str:
    """A regex group for any of these phrases, the longest first (« edu conect » before
    « conect »)."""
    return "(?:" + "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True)) + ")"


def _patterns(
    data: dict[str, list[str]], opening: str | None = None
) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """One compiled alternation per name; with `opening`, found only at the start of the text
    or after one of those words (a clause opener, a request cue), never in mid-phrase (« le
    compte créé à la main »)."""
    compiled = []
    for name, patterns in data.items():
        alternation = "|".join(f"(?:{p})" for p in patterns)
        if opening is not None:
            alternation = rf"(?:^|\b{opening} )(?:{alternation})\b"
        compiled.append((name, re.compile(alternation)))
    return tuple(compiled)


_stemmer = snowballstemmer.stemmer("french")


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """Snowball French stem; digits and very short words are kept whole."""
    if len(word) <= 3 or word.isdigit():
        return word
    stemmed: str = _stemmer.stemWord(word)
    return stemmed
