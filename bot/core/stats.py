"""The eRun's /stats: questions and tickets over the last 7 and 30 days, as Telegram HTML and a
small chart; pure (the caller reads the rows), so it is tested on hand-made data."""

from __future__ import annotations

import html
import io
import re
import statistics
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
# answered by the assistant, a « Vouliez-vous dire » suggestion, declined as out of scope,
# handed to a person.
OUTCOMES = ("answered", "suggested", "declined", "handed")
RESOLUTIONS = ("reply", "faq", "draft", "closed")
# A ticket closed without an answer has no "time to a human answer".
HUMAN_RESOLUTIONS = frozenset({"reply", "faq", "draft"})
WINDOWS = (7, 30)
NO_DATA = (
    "<b>Statistiques</b>\nAucune question ni demande sur les 30 derniers jours : rien à "
    "afficher pour l'instant."
)
_WEEKDAYS = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
# Columns of the <pre> tables: a phone shows about 32 monospaced characters without wrapping.
_TITLE_WIDTH = 20
_QUESTION_LENGTH = 90


@dataclass(frozen=True)
class LoggedQuestion:
    """One question and how it was met (question_log); naive times are UTC."""

    at: datetime
    intent: str | None
    outcome: str

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown question outcome {self.outcome!r}")


@dataclass(frozen=True)
class TicketTiming:
    """What /stats needs of a ticket; `resolution` is None while it is open."""

    opened_at: datetime
    handled_at: datetime | None
    resolution: str | None
    question: str
    top_intent: str | None

    def __post_init__(self) -> None:
        if self.resolution is not None and self.resolution not in RESOLUTIONS:
            raise ValueError(f"unknown ticket resolution {self.resolution!r}")

    @property
    def answer_delay(self) -> timedelta | None:
        """Time from opening to a person's answer; None if open or closed unanswered."""
        if self.resolution not in HUMAN_RESOLUTIONS or self.handled_at is None:
            return None
        return _utc(self.handled_at) - _utc(self.opened_at)


@dataclass(frozen=True)
class StatsReport:
    """The /stats answer: Telegram HTML, and a PNG chart (None when there is nothing to draw)."""

    text: str
    chart_png: bytes | None


def _utc(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes for timezone-aware columns: they are UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def french_duration(delay: timedelta) -> str:
    """A duration as a French reader writes it: « 12 min », « 2 h 05 », « 3 j 4 h » (« < 1 min »:
    escape it like any text)."""
    minutes = round(max(delay.total_seconds(), 0) / 60)
    if minutes == 0:
        return "< 1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {rest:02d}"
    days, hours = divmod(round(minutes / 60), 24)
    return f"{days} j {hours} h" if hours else f"{days} j"


def _percent(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)} %" if whole else "–"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def question_key(text: str) -> str:
    """What groups "exact-ish" equal questions: case, accents, punctuation and spaces ignored."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(char for char in folded if not unicodedata.combining(char))
    return " ".join(re.sub(r"[\W_]+", " ", folded).split())


@dataclass(frozen=True)
class _Window:
    """One period: the questions asked and tickets opened since `start` (a Paris midnight)."""

    days: int
    start: datetime
    questions: list[LoggedQuestion]
    tickets: list[TicketTiming]

    def count(self, outcome: str) -> int:
        return sum(1 for question in self.questions if question.outcome == outcome)

    def median_delay(self) -> tuple[timedelta | None, int]:
        delays = [d.total_seconds() for t in self.tickets if (d := t.answer_delay) is not None]
        return (timedelta(seconds=statistics.median(delays)) if delays else None), len(delays)


def _window(
    days: int,
    today: date,
    zone: ZoneInfo,
    now: datetime,
    questions: list[LoggedQuestion],
    tickets: list[TicketTiming],
) -> _Window:
    # Calendar days in Paris, today included: « 7 jours » is this day and the six before it.
    start = datetime.combine(today - timedelta(days=days - 1), time(), zone).astimezone(UTC)
    return _Window(
        days,
        start,
        [q for q in questions if start <= _utc(q.at) <= now],
        [t for t in tickets if start <= _utc(t.opened_at) <= now],
    )


def _pre(rows: list[list[str]], widths: list[int]) -> str:
    """A <pre> table: first column left-aligned, the others right-aligned, cells escaped."""
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append(" ".join(cells).rstrip())
    return "<pre>" + html.escape("\n".join(lines), quote=False) + "</pre>"


def _summary(week: _Window, month: _Window) -> str:
    rows = [
        ["", "7 j", "30 j"],
        ["Questions", str(len(week.questions)), str(len(month.questions))],
    ]
    for label, outcome in (
        ("Répondues", "answered"),
        ("Suggestions", "suggested"),
        ("Hors sujet", "declined"),
        ("À une personne", "handed"),
    ):
        rows.append(
            [label] + [_percent(w.count(outcome), len(w.questions)) for w in (week, month)]
        )
    rows.append(["Demandes", str(len(week.tickets)), str(len(month.tickets))])
    medians = [w.median_delay() for w in (week, month)]
    rows.append(["Réponses pers."] + [str(count) for _, count in medians])
    rows.append(
        ["Délai médian"] + [french_duration(d) if d is not None else "–" for d, _ in medians]
    )
    return _pre(rows, [14, 9, 9])


def _per_day(week: _Window, today: date, zone: ZoneInfo) -> str:
    by_day: dict[date, Counter[str]] = {}
    for question in week.questions:
        by_day.setdefault(_utc(question.at).astimezone(zone).date(), Counter())[
            question.outcome
        ] += 1
    rows = [["Jour", "Total", "Rép.", "Pers."]]
    for offset in range(week.days - 1, -1, -1):
        day = today - timedelta(days=offset)
        counts = by_day.get(day, Counter())
        label = f"{_WEEKDAYS[day.weekday()]} {day:%d/%m}"
        rows.append([label, str(counts.total()), str(counts["answered"]), str(counts["handed"])])
    return "<b>Par jour</b> (7 derniers jours)\n" + _pre(rows, [10, 6, 6, 6])


def _per_intent(week: _Window, month: _Window, titles: Mapping[str, str], top: int) -> str | None:
    week_counts = Counter(q.intent for q in week.questions if q.intent)
    month_counts = Counter(q.intent for q in month.questions if q.intent)
    if not month_counts:
        return None
    ranked = sorted(
        month_counts,
        key=lambda intent: (-month_counts[intent], -week_counts[intent], intent),
    )
    rows = [["Sujet", "7 j", "30 j"]]
    for intent in ranked[:top]:
        title = _clip(titles.get(intent, intent), _TITLE_WIDTH)
        rows.append([title, str(week_counts[intent]), str(month_counts[intent])])
    others = ranked[top:]
    if others:
        rows.append(
            [
                f"Autres ({len(others)})",
                str(sum(week_counts[i] for i in others)),
                str(sum(month_counts[i] for i in others)),
            ]
        )
    return "<b>Par sujet</b>\n" + _pre(rows, [_TITLE_WIDTH, 4, 5])


def top_unanswered(
    tickets: Iterable[TicketTiming], top: int = 5
) -> list[tuple[str, int, str | None]]:
    """Open tickets' questions grouped by `question_key`, most frequent first: (the most
    frequent wording, count, the most frequent top intent)."""
    groups: dict[str, list[TicketTiming]] = {}
    for ticket in tickets:
        if ticket.resolution is None and (key := question_key(ticket.question)):
            groups.setdefault(key, []).append(ticket)
    # Most frequent first; then the most recently asked; then the text, for a stable order.
    ordered = sorted(
        groups.items(),
        key=lambda item: (
            -len(item[1]),
            -max(_utc(t.opened_at) for t in item[1]).timestamp(),
            item[0],
        ),
    )
    result = []
    for _, group in ordered[:top]:
        # The most frequent wording; among equals, the most recently asked.
        seen: dict[str, tuple[int, datetime]] = {}
        for ticket in group:
            text = " ".join(ticket.question.split())
            count, latest = seen.get(text, (0, _utc(ticket.opened_at)))
            seen[text] = (count + 1, max(latest, _utc(ticket.opened_at)))
        wording = max(seen, key=lambda text: seen[text])
        intents = Counter(t.top_intent for t in group if t.top_intent)
        result.append((wording, len(group), intents.most_common(1)[0][0] if intents else None))
    return result


def _unanswered(month: _Window, titles: Mapping[str, str], top: int) -> str:
    groups = top_unanswered(month.tickets, top)
    if not groups:
        return "<b>Sans réponse</b> : aucune demande ouverte sur 30 jours."
    lines = ["<b>Sans réponse</b> (demandes ouvertes, 30 jours)"]
    for wording, count, intent in groups:
        line = f"<b>{count} ×</b> « {html.escape(_clip(wording, _QUESTION_LENGTH), quote=False)} »"
        if intent is not None:
            line += f" <i>(piste : {html.escape(titles.get(intent, intent), quote=False)})</i>"
        lines.append(line)
    return "\n".join(lines)


def build_report(
    questions: Iterable[LoggedQuestion],
    tickets: Iterable[TicketTiming],
    now: datetime,
    *,
    zone: ZoneInfo = PARIS,
    intent_titles: Mapping[str, str],
    top: int = 5,
    chart: bool = True,
) -> StatsReport:
    """The /stats answer over the last 7 and 30 Paris days (today included) at `now`."""
    now = _utc(now)
    today = now.astimezone(zone).date()
    questions, tickets = list(questions), list(tickets)
    week, month = (_window(days, today, zone, now, questions, tickets) for days in WINDOWS)
    if not month.questions and not month.tickets:
        return StatsReport(NO_DATA, None)
    local = now.astimezone(zone)
    parts = [
        f"<b>Statistiques</b> au {local:%d/%m/%Y} à {local:%H} h {local:%M}\n"
        "<i>7 et 30 derniers jours (aujourd'hui compris), heure de Paris</i>",
        _summary(week, month),
        _per_day(week, today, zone),
    ]
    intents = _per_intent(week, month, intent_titles, top)
    if intents is not None:
        parts.append(intents)
    parts.append(_unanswered(month, intent_titles, top))
    png = daily_chart(month.questions, today, zone) if chart and month.questions else None
    return StatsReport("\n\n".join(parts), png)


# matplotlib is not thread-safe (shared font caches) and the core runs in several threads.
_CHART_LOCK = threading.Lock()
# Bottom to top; colours that stay distinct for the colour-blind (Okabe–Ito).
_LAYERS = (
    ("answered", "Répondues", "#009E73"),
    ("suggested", "Suggestions", "#F0E442"),
    ("handed", "Transmises à une personne", "#E69F00"),
    ("declined", "Hors sujet", "#999999"),
)


def daily_chart(
    questions: Iterable[LoggedQuestion], today: date, zone: ZoneInfo = PARIS, days: int = 30
) -> bytes:
    """Questions per Paris day over `days` days up to `today`, stacked by outcome, as a PNG
    (600×300 px, no timestamp in it: the same data gives the same bytes)."""
    # Imported here: matplotlib costs about half a second to import, paid only by /stats.
    # Figure + the Agg canvas, not pyplot: no global state nor GUI backend to choose.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    first = today - timedelta(days=days - 1)
    counts = {outcome: [0] * days for outcome in OUTCOMES}
    for question in questions:
        index = (_utc(question.at).astimezone(zone).date() - first).days
        if 0 <= index < days:
            counts[question.outcome][index] += 1
    with _CHART_LOCK:
        figure = Figure(figsize=(6, 3), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        positions = list(range(days))
        bottom = [0] * days
        for outcome, label, colour in _LAYERS:
            axes.bar(
                positions, counts[outcome], bottom=bottom, color=colour, label=label, width=0.8
            )
            bottom = [b + c for b, c in zip(bottom, counts[outcome], strict=True)]
        ticks = list(range(days - 1, -1, -7))[::-1]
        axes.set_xticks(ticks, [f"{first + timedelta(days=i):%d/%m}" for i in ticks], fontsize=8)
        axes.set_xlim(-0.7, days - 0.3)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.tick_params(axis="y", labelsize=8)
        axes.set_title(f"Questions par jour ({days} derniers jours)", fontsize=10)
        axes.spines[["top", "right"]].set_visible(False)
        axes.legend(fontsize=7, frameon=False, loc="upper left", ncols=2)
        # Room above the tallest bar for the legend.
        axes.set_ylim(0, max(max(bottom), 1) * 1.35)
        figure.tight_layout()
        buffer = io.BytesIO()
        # No "Software" (version) nor date chunk: the bytes depend on the data only.
        figure.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()
