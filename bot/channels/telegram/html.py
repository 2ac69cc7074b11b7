"""Telegram HTML by length: Telegram's count (UTF-16 code units) and splitting a long reply
into messages that each fit, with balanced tags."""

from __future__ import annotations

import re

from telegram.constants import MessageLimit

_ATOM = re.compile(
    r"<[^>]*>"  # a tag, never cut inside
    r"|&#?\w+;"  # an entity, never cut inside
    r"|\n[ \t]*\n\s*"  # a paragraph break
    r"|\n"  # a line break
    r"|[ \t]+"  # spaces between words
    r"|[^<&\s]{1,32}"  # a piece of word: the unit of a hard cut
    r"|[\s\S]"  # anything else (a stray < or &)
)
_TAG_NAME = re.compile(r"</?\s*([a-zA-Z][\w-]*)")
# Break quality of the boundary that follows an atom: paragraph > line > space > hard cut.
_PARAGRAPH, _LINE, _SPACE, _HARD = 3, 2, 1, 0

Stack = tuple[tuple[str, str], ...]


def utf16_len(text: str) -> int:
    """The length of `text` as Telegram counts it (message limits, entity offsets)."""
    return len(text.encode("utf-16-le")) // 2


def _fitting_prefix(text: str, room: int) -> str:
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > room:
            return text[:index]
    return text


def _break_level(atom: str) -> int:
    if atom.startswith("\n"):
        return _PARAGRAPH if atom.count("\n") > 1 else _LINE
    if atom[0] in " \t":
        return _SPACE
    return _HARD


def _closers(stack: Stack) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(stack))


def _open_tags(atoms: list[str]) -> list[Stack]:
    """stacks[i]: the tags open before atom i, as (name, opening tag) pairs (one more entry
    than atoms: the tags still open at the end)."""
    stacks: list[Stack] = []
    stack: Stack = ()
    for atom in atoms:
        stacks.append(stack)
        if atom.startswith("<") and (match := _TAG_NAME.match(atom)):
            name = match.group(1).lower()
            if atom.startswith("</"):
                names = [open_name for open_name, _ in stack]
                if name in names:
                    stack = stack[: len(names) - 1 - names[::-1].index(name)]
            elif not atom.endswith("/>"):
                stack = (*stack, (name, atom))
    stacks.append(stack)
    return stacks


def split_html(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Split Telegram HTML into chunks of at most `limit`, each with balanced tags.

    Cuts at paragraph boundaries, else at a line, else between words, else anywhere outside a
    tag or entity; tags open at a cut are closed at the end of the chunk and reopened at the
    start of the next one. The markup counts towards the limit, so the visible text always fits.
    """
    if utf16_len(text) <= limit:
        return [text] if text.strip() else []
    atoms: list[str] = _ATOM.findall(text)
    stacks = _open_tags(atoms)

    chunks: list[str] = []
    start = 0
    while start < len(atoms):
        prefix = "".join(tag for _, tag in stacks[start])
        size = utf16_len(prefix)
        best = [-1, -1, -1, -1]  # the last fitting boundary of each break level
        end = start
        while end < len(atoms):
            size += utf16_len(atoms[end])
            if size + utf16_len(_closers(stacks[end + 1])) > limit:
                break
            end += 1
            # A cut just before a break is as good as one just after it (spaces are trimmed).
            after = _break_level(atoms[end - 1])
            before = _break_level(atoms[end]) if end < len(atoms) else _HARD
            best[max(after, before)] = end
        if end == start and not atoms[start].startswith(("<", "&")):
            # A piece of word that alone is too long for what is left: cut inside it.
            room = limit - utf16_len(prefix) - utf16_len(_closers(stacks[start + 1]))
            head = _fitting_prefix(atoms[start], room)
            if head:
                atoms[start : start + 1] = [head, atoms[start][len(head) :]]
                stacks.insert(start + 1, stacks[start])  # text opens or closes no tag
                continue
        if end == len(atoms):
            cut = end
        else:
            levels = (_PARAGRAPH, _LINE, _SPACE)
            cut = next((best[level] for level in levels if best[level] > start), end)
            if cut <= start:
                # A single atom that does not fit even alone (a huge tag): let it through
                # rather than loop forever; Telegram will refuse it, the error handler speaks.
                cut = start + 1
        body = "".join(atoms[start:cut]).strip()
        chunk = prefix + body + _closers(stacks[cut])
        if re.sub(r"<[^>]*>", "", chunk).strip():
            chunks.append(chunk)
        start = cut
        # The next chunk starts with a word, not with the spaces of the break.
        while start < len(atoms) and _break_level(atoms[start]) != _HARD:
            start += 1
    return chunks
