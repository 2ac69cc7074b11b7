"""French that reads right: agreement in number, elision, no « (s) » or « (e) »."""

from __future__ import annotations

import contextlib
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from intents.nlu.normalize import fold


def count(number: int, singular: str, plural: str | None = None) -> str:
    """« 1 parent », « 2 parents », « 0 parent »: French keeps 0 and 1 singular."""
    return f"{number} {singular if number <= 1 else plural or _plural(singular)}"


def agree(number: int, singular: str, plural: str | None = None) -> str:
    """The word alone, agreed with the number (« activé » / « activés »)."""
    return singular if number <= 1 else plural or _plural(singular)


def this(noun: str) -> str:
    """« ce groupe », « cet enseignant », « ce compte manuel »."""
    first = fold(noun)[:1]
    return f"{'cet' if first in set('aeiouyh') else 'ce'} {noun}"


def day(iso_date: str) -> str:
    """« 2026-09-01 » → « 01/09/2026 »; anything else is shown as it is."""
    try:
        return date.fromisoformat(iso_date[:10]).strftime("%d/%m/%Y")
    except ValueError:
        return iso_date


def day_of(moment: datetime) -> str:
    """The day of a moment as French schools read it (Paris time): « 28/11/2026 »."""
    # Without time zone data, the moment's own day.
    with contextlib.suppress(ZoneInfoNotFoundError):
        moment = moment.astimezone(ZoneInfo("Europe/Paris"))
    return moment.strftime("%d/%m/%Y")


def _plural(word: str) -> str:
    """Plural of each word of a short noun phrase (« compte manuel » → « comptes manuels »)."""
    return " ".join(w if w.endswith(("s", "x", "z")) else w + "s" for w in word.split())
