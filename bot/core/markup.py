"""The last check before a reply leaves the core: is it HTML that Telegram accepts?

User text (commands, names typed) and directory text (school, class, group and person names,
from a school file) are escaped where they enter a reply (`intents.kb.escape`). One forgotten
escape would let `<b>` or `&` through, and Telegram refuses the whole message: the user then
gets nothing, or an apology. So every reply is checked here once; a malformed one is logged as
the bug it is and repaired: what Telegram would refuse is escaped, shown as the text it is.
"""

from __future__ import annotations

import logging
import re

from intents.kb import escape

log = logging.getLogger(__name__)

# What our replies use of Telegram's HTML (core.telegram.org/bots/api#html-style).
ALLOWED_TAGS = frozenset({"b", "i", "u", "s", "a", "code", "pre", "blockquote"})
_PIECE = re.compile(r"<[^<>]*>|&[^;\s<>&]*;|[<>&]")
_OPEN = re.compile(r'<([a-z]+)( href="[^"<>]*")?>')
_CLOSE = re.compile(r"</([a-z]+)>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d{1,7}|#x[0-9a-fA-F]{1,6});")


def _tag(piece: str) -> tuple[str, bool] | None:
    """(name, is closing) of a tag Telegram accepts as written, else None."""
    if closing := _CLOSE.fullmatch(piece):
        return (closing.group(1), True) if closing.group(1) in ALLOWED_TAGS else None
    opening = _OPEN.fullmatch(piece)
    if opening is None or opening.group(1) not in ALLOWED_TAGS:
        return None
    # A link needs its href, and only a link has one.
    return (
        (opening.group(1), False) if (opening.group(1) == "a") == bool(opening.group(2)) else None
    )


def html_problem(text: str) -> str | None:
    """Why Telegram would refuse `text` as HTML (in English, for the log), or None: only the
    allowed tags (`a` with its href, and only it), balanced and properly nested, and no bare
    `<`, `>` or `&` (Telegram wants them as entities)."""
    open_tags: list[str] = []
    for match in _PIECE.finditer(text):
        piece, at = match.group(), match.start()
        if piece.startswith("&") and len(piece) > 1:
            if not _ENTITY.fullmatch(piece):
                return f"unknown entity {piece!r} at {at}"
            continue
        if len(piece) == 1:
            return f"bare {piece!r} at {at}"
        tag = _tag(piece)
        if tag is None:
            return f"tag not allowed {piece!r} at {at}"
        name, closing = tag
        if not closing:
            open_tags.append(name)
        elif open_tags and open_tags[-1] == name:
            open_tags.pop()
        else:
            return f"unexpected {piece!r} at {at}"
    return f"unclosed {open_tags}" if open_tags else None


def repaired(text: str) -> str:
    """`text` with whatever Telegram would refuse escaped, the rest kept: balanced allowed
    tags stay markup, a stray `<b>`, an unclosed tag, a bare `&` become visible text."""
    out: list[str] = []
    # Tags opened and not yet closed: (name, position of the opening tag in `out`).
    open_tags: list[tuple[str, int]] = []
    position = 0
    for match in _PIECE.finditer(text):
        out.append(text[position : match.start()])  # holds no <, > or &: plain text
        position = match.end()
        piece = match.group()
        tag = _tag(piece) if len(piece) > 1 and piece.startswith("<") else None
        if piece.startswith("&") and _ENTITY.fullmatch(piece):
            out.append(piece)
        elif tag is not None and not tag[1]:
            open_tags.append((tag[0], len(out)))
            out.append(piece)
        elif tag is not None and open_tags and open_tags[-1][0] == tag[0]:
            open_tags.pop()
            out.append(piece)
        else:
            out.append(escape(piece))
    out.append(text[position:])
    for _, index in open_tags:
        out[index] = escape(out[index])
    return "".join(out)


def checked(text: str, intent: str | None) -> str:
    """`text` if Telegram accepts it; else repaired (what it would refuse shown as text),
    and an error in the log naming the intent whose reply was malformed."""
    problem = html_problem(text)
    if problem is None:
        return text
    log.error("malformed HTML in a reply of %s: %s", intent, problem)
    return repaired(text)
