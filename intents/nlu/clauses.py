"""The questions of a message that asks several: its clauses, each read on its own."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from intents.nlu.analysis import Analysis
from intents.nlu.normalize import Lexicon, fold, order_concept

_CLAUSES = re.compile(
    r"[?!.;\n]+|\b(?:et aussi|autre question|sinon|par ailleurs|au fait)\b", re.IGNORECASE
)
# Several questions are asked with several question marks or a word that adds one; a long
# story with one question is one question (and is not read clause by clause).
_SEVERAL = re.compile(
    r"\?.*\S.*\?|\b(?:et aussi|autre question|sinon|par ailleurs|au fait)\b", re.I | re.S
)
# At most this many topics are answered.
MOST = 3


def several_topics(
    text: str,
    main: str,
    topic: Callable[[str], str | None],
    title: Callable[[str], str],
    is_faq: Callable[[str], bool],
) -> list[str]:
    """The FAQ topics of a message that asks several questions, in order (at most three);
    empty for a single question. A short « et les partages ? » is read after the one
    before it. `topic` reads one question; `is_faq` tells whether an intent is a FAQ topic."""
    if not _SEVERAL.search(text):
        return []
    parts = [p.strip() for p in _CLAUSES.split(text) if p and p.strip()]
    if len(parts) < 2:
        return []
    # A clause said twice reads the same: read once.
    read: dict[str, str | None] = {}

    def topic_of(question: str) -> str | None:
        if question not in read:
            read[question] = topic(question)
        return read[question]

    found: list[str] = []
    for at, part in enumerate(parts):
        if len(found) + len(parts) - at < 2:
            return []  # too few clauses left to make two topics
        if len(found) >= MOST and (main in found[:MOST] or not is_faq(main)):
            return found[:MOST]  # the later clauses cannot change the answer
        found_here = topic_of(part)
        if found_here is None and found:
            found_here = topic_of(f"{title(found[-1])} {part}")
        if found_here is not None and found_here not in found:
            found.append(found_here)
    if len(found) < 2:
        return []
    if main not in found and is_faq(main):
        return []  # the whole message says something none of its parts says alone
    return found[:MOST]


# Where an order may start inside a message besides its opening: after a sign that ends a
# clause (« …leur ancienne classe, bloque leurs comptes », « Delcourt : compte à supprimer »)
# or a word that links one (« en attendant coupe l'accès aux familles »).
_CLAUSE_START = re.compile(
    r"[,;:()\[\]\n]|[.!?](?=\s)|\s[-–>]+\s|->|\b(?:et|mais|du coup|en attendant|par contre)\s",
    re.IGNORECASE,
)
# Endings of a conjugated verb or a participle typed without its accents (« …, bloques depuis
# hier »): inside a message, only the bare imperative (« bloque », « mets ») gives an order; an
# infinitive there goes with another verb (« la différence entre supprimer et pré-supprimer »).
_NOT_IMPERATIVE = ("ee", "ees", "es", "ant", "ent", "ons", "ait", "aient")
_PARTICIPLE = ("é", "ée", "és", "ées")
# A clause with a subject tells what someone does (« j'ai du mal à rattacher »), not a task.
_SUBJECTS = frozenset({"je", "j", "tu", "on", "il", "elle", "nous", "vous", "ils", "elles"})


def ordered_clause(text: str, lexicon: Lexicon) -> str | None:
    """The order that opens a clause of the message, folded, from its verb on (« coupe l acces
    aux familles »), or the verb of a task written as a to-do (« compte à supprimer » →
    « supprimer »); None when no clause orders."""
    pattern = lexicon.imperative_pattern
    if pattern is None:
        return None
    for clause in _CLAUSE_START.split(text):
        raw = clause.strip().lower().split()
        if not raw:
            continue
        words = lexicon.rewrite(fold(" ".join(raw))).split()
        opened = pattern.match(" ".join(words[:2]))
        if opened is not None:
            verb = opened.group(0).split()[-1]
            typed = next((w for w in raw[:2] if fold(w) == verb), verb)
            if not (
                verb.endswith(_NOT_IMPERATIVE)
                or lexicon.is_infinitive(verb)
                or typed.endswith(_PARTICIPLE)
            ):
                return " ".join(words[words.index(verb) :])
        if (
            len(words) >= 3
            and words[-2] == "a"
            and words[-1].endswith(("er", "ir", "re"))
            and pattern.match(words[-1])
            and not _SUBJECTS.intersection(words)
        ):
            return words[-1]
    return None


def read_clause_order(analysis: Analysis, lexicon: Lexicon) -> None:
    """An order inside the message (« …, en attendant coupe l'accès aux familles ») is an
    order: its words say what is asked, whatever the clauses around it say will follow. A
    message that asks how (« grp besoin 2022 à effacer, quelle manip ») asks for the how-to."""
    if analysis.cues.order or analysis.cues.howto:
        return
    order = ordered_clause(analysis.text, lexicon)
    if order is None:
        return
    words = order.split()
    analysis.cues = dataclasses.replace(analysis.cues, order=True)
    analysis.concepts |= {order_concept(words[0])}
    analysis.requested = analysis.requested or frozenset(lexicon.concepts_in(" ".join(words[:4])))
