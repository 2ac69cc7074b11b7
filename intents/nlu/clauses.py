"""The questions of a message that asks several: its clauses, each read on its own."""

from __future__ import annotations

import re
from collections.abc import Callable

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
