"""What Telegram accepts as HTML, checked independently of the core's own check
(bot.core.markup): Python's HTML parser for the tags, a regular expression for the entities."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# The tags our replies may use (core.telegram.org/bots/api#html-style).
ALLOWED = {"b", "i", "u", "s", "a", "code", "pre", "blockquote"}
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


class _TelegramHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.problems: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED:
            self.problems.append(f"tag <{tag}> not allowed")
        elif tag == "a" and (len(attrs) != 1 or attrs[0][0] != "href" or not attrs[0][1]):
            self.problems.append(f"<a> with {attrs}")
        elif tag != "a" and attrs:
            self.problems.append(f"<{tag}> with attributes {attrs}")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.problems.append(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        if any(char in data for char in "<>"):
            self.problems.append(f"bare < or > in {data[:40]!r}")

    def handle_comment(self, data: str) -> None:
        self.problems.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.problems.append("declaration")

    def handle_pi(self, data: str) -> None:
        self.problems.append("processing instruction")

    def unknown_decl(self, data: str) -> None:
        self.problems.append("unknown declaration")


def telegram_html_problems(text: str) -> list[str]:
    """Why Telegram would refuse `text` with parse_mode HTML (empty: it accepts it)."""
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    problems = parser.problems
    if parser.open:
        problems.append(f"unclosed {parser.open}")
    if re.search(r"<a(?![^>]*\shref=\"[^\"]*\">)[\s>]", text):
        problems.append("link tag without a quoted href")
    # Every & starts an entity Telegram knows, with its semicolon.
    if "&" in _ENTITY.sub("", text):
        problems.append("bare & or unknown entity")
    return problems
