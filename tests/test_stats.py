"""/stats's report (bot/core/stats.py) on a hand-made dataset, and a reply carrying an image
through each channel: a photo on Telegram (real PTB stack, fake Bot API), a file in the
console."""

from __future__ import annotations

import html
import io
import re
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from bot.channels.console import Console
from bot.channels.telegram.fake_http import decode_params
from bot.core.assistant import Assistant
from bot.core.messages import Button, Incoming, Outcome, Reply
from bot.core.stats import (
    NO_DATA,
    LoggedQuestion,
    TicketTiming,
    build_report,
    daily_chart,
    french_duration,
    question_key,
)
from bot.storage.store import Store
from tests.html_oracle import telegram_html_problems
from tests.support import ROOT, Clock
from tests.telegram_support import Bot, labels, running_bot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Saturday 28 November 2026, 10:00 in Paris (UTC+1).
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
TITLES = {
    "educonnect": "EduConnect",
    "onde": "Alimentation ONDE",
    "gar": "Responsables <GAR> & co",
    "contact": "Contacter son eRun",
}


def _at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


QUESTIONS = [
    # The last 7 Paris days start on Sunday 22/11 at 00:00 in Paris, 21/11 23:00 UTC.
    LoggedQuestion(_at(11, 21, 23, 30), "educonnect", "answered"),  # Paris: 22/11 00:30
    LoggedQuestion(_at(11, 25, 10), "educonnect", "answered"),
    LoggedQuestion(_at(11, 26, 10), "onde", "suggested"),
    LoggedQuestion(_at(11, 27, 23, 10), None, "handed"),  # Paris: 28/11 00:10
    LoggedQuestion(_at(11, 28, 8), None, "declined"),
    LoggedQuestion(_at(11, 28, 8, 30), "gar", "answered"),
    # Only in the last 30 days (from 30/10 00:00 in Paris, 29/10 23:00 UTC).
    LoggedQuestion(_at(11, 21, 22, 30), "educonnect", "answered"),  # Paris: 21/11 23:30
    LoggedQuestion(_at(11, 10, 9), "educonnect", "answered"),
    LoggedQuestion(_at(10, 29, 23, 30), "onde", "handed"),  # Paris: 30/10 00:30
    LoggedQuestion(_at(11, 1, 12), None, "declined"),
    # Too old for both: Paris 29/10 23:30.
    LoggedQuestion(_at(10, 29, 22, 30), "educonnect", "answered"),
]


def _handled(opened: datetime, after: timedelta, resolution: str) -> TicketTiming:
    return TicketTiming(opened, opened + after, resolution, "question traitée", None)


def _open(opened: datetime, question: str, intent: str | None) -> TicketTiming:
    return TicketTiming(opened, None, None, question, intent)


TICKETS = [
    _handled(_at(11, 27, 10), timedelta(hours=2, minutes=5), "reply"),
    _handled(_at(11, 26, 10), timedelta(minutes=12), "faq"),
    _handled(_at(11, 25, 10), timedelta(minutes=35), "draft"),
    # Closed without an answer: no "time to a human answer".
    _handled(_at(11, 24, 10), timedelta(hours=5), "closed"),
    _handled(_at(11, 5, 10), timedelta(hours=5), "reply"),
    _open(_at(11, 27, 10), "Comment joindre mon eRun ?", "contact"),
    _open(_at(11, 20, 10), "comment joindre   mon eRun", "contact"),
    _open(_at(11, 15, 10), "COMMENT joindre mon ERUN !!", None),
    _open(_at(11, 26, 10), "Mot de passe <perdu> & bloqué", "educonnect"),
    _open(_at(10, 1, 10), "Une vieille question", None),
]


def _tables(text: str) -> list[list[list[str]]]:
    """The <pre> tables of a report, as rows of cells (cells are separated by 2+ spaces)."""
    return [
        [re.split(r"\s{2,}", line.strip()) for line in html.unescape(block).splitlines()]
        for block in re.findall(r"<pre>(.*?)</pre>", text, re.S)
    ]


def _report(**kwargs: Any) -> str:
    return build_report(QUESTIONS, TICKETS, NOW, intent_titles=TITLES, chart=False, **kwargs).text


# -- figures ---------------------------------------------------------------------------------


def test_summary_counts_shares_and_median_over_7_and_30_days() -> None:
    summary = {row[0]: row[1:] for row in _tables(_report())[0][1:]}
    assert summary["Questions"] == ["6", "10"]
    assert summary["Répondues"] == ["50 %", "50 %"]
    assert summary["Suggestions"] == ["17 %", "10 %"]
    assert summary["Hors sujet"] == ["17 %", "20 %"]
    assert summary["À une personne"] == ["17 %", "20 %"]
    # Tickets opened in the window; closed ones have no human answer.
    assert summary["Demandes"] == ["6", "9"]
    assert summary["Réponses pers."] == ["3", "4"]
    # 7 days: 12 min, 35 min, 2 h 05; 30 days adds 5 h: (35 + 125) / 2 minutes.
    assert summary["Délai médian"] == ["35 min", "1 h 20"]


def test_days_are_paris_calendar_days() -> None:
    per_day = _tables(_report())[1]
    assert per_day[0] == ["Jour", "Total", "Rép.", "Pers."]
    assert per_day[1:] == [
        ["dim. 22/11", "1", "1", "0"],  # asked at 23:30 UTC the day before
        ["lun. 23/11", "0", "0", "0"],
        ["mar. 24/11", "0", "0", "0"],
        ["mer. 25/11", "1", "1", "0"],
        ["jeu. 26/11", "1", "0", "0"],
        ["ven. 27/11", "0", "0", "0"],
        ["sam. 28/11", "3", "1", "1"],  # one of them asked at 23:10 UTC on 27/11
    ]
    # Counted in UTC, 21/11 23:30 UTC falls out of the week and 29/10 23:30 out of the month.
    in_utc = _tables(_report(zone=ZoneInfo("UTC")))[0]
    assert in_utc[1] == ["Questions", "5", "9"]


def test_intents_ranked_with_titles_and_the_rest_grouped() -> None:
    per_intent = _tables(_report())[2]
    assert per_intent == [
        ["Sujet", "7 j", "30 j"],
        ["EduConnect", "2", "4"],
        ["Alimentation ONDE", "1", "2"],
        ["Responsables <GAR>…", "1", "1"],  # clipped to the column, escaped in the HTML
    ]
    top_two = _tables(_report(top=2))[2]
    assert top_two[-1] == ["Autres (1)", "1", "1"]


def test_top_unanswered_groups_exactish_questions_most_frequent_first() -> None:
    text = _report()
    section = text[text.index("<b>Sans réponse</b>") :]
    lines = section.splitlines()[1:]
    assert lines == [
        "<b>3 ×</b> « Comment joindre mon eRun ? » <i>(piste : Contacter son eRun)</i>",
        "<b>1 ×</b> « Mot de passe &lt;perdu&gt; &amp; bloqué » <i>(piste : EduConnect)</i>",
    ]
    assert "vieille" not in text  # opened more than 30 days ago
    assert question_key(" COMMENT joindre mon ERUN !!") == question_key("comment joindre mon eRun")


def test_french_durations() -> None:
    assert french_duration(timedelta(seconds=20)) == "< 1 min"
    assert french_duration(timedelta(minutes=12, seconds=10)) == "12 min"
    assert french_duration(timedelta(hours=2, minutes=5)) == "2 h 05"
    assert french_duration(timedelta(minutes=59, seconds=50)) == "1 h 00"
    assert french_duration(timedelta(days=1, hours=3, minutes=10)) == "1 j 3 h"
    assert french_duration(timedelta(days=2)) == "2 j"


# -- HTML --------------------------------------------------------------------------------------


def test_report_is_valid_telegram_html_with_dynamic_text_escaped() -> None:
    nasty = "<b>faux</b> & <script>"
    questions = [*QUESTIONS, LoggedQuestion(_at(11, 28, 7), "nasty", "answered")]
    tickets = [*TICKETS, _open(_at(11, 28, 7), nasty, "nasty")]
    text = build_report(
        questions, tickets, NOW, intent_titles={**TITLES, "nasty": nasty}, chart=False
    ).text
    assert telegram_html_problems(text) == []
    assert set(re.findall(r"</?(\w+)", text)) <= {"b", "i", "code", "pre"}
    assert "<script>" not in text and "&lt;b&gt;faux&lt;/b&gt; &amp; &lt;script&gt;" in text


def test_no_data_is_said_in_one_french_sentence_without_chart() -> None:
    for questions, tickets in (([], []), (QUESTIONS[-1:], TICKETS[-1:])):
        report = build_report(questions, tickets, NOW, intent_titles=TITLES)
        assert report.text == NO_DATA and report.chart_png is None
        assert "Aucune question" in report.text
        assert telegram_html_problems(report.text) == []


# -- the chart ---------------------------------------------------------------------------------


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        chunks.append((png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def test_chart_is_a_small_deterministic_png() -> None:
    started = time.perf_counter()
    first = build_report(QUESTIONS, TICKETS, NOW, intent_titles=TITLES).chart_png
    elapsed = time.perf_counter() - started
    assert first is not None and first.startswith(PNG_SIGNATURE)
    chunks = _chunks(first)
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert chunks[0][0] == b"IHDR" and (width, height) == (600, 300)
    # Nothing that changes from one run or one version to the next.
    assert not {b"tIME", b"tEXt", b"iTXt", b"zTXt"} & {kind for kind, _ in chunks}
    assert len(first) < 60_000
    second = build_report(QUESTIONS, TICKETS, NOW, intent_titles=TITLES).chart_png
    assert second == first
    other = build_report(QUESTIONS[1:], TICKETS, NOW, intent_titles=TITLES).chart_png
    assert other != first
    print(f"report with chart: {elapsed:.3f} s (first, import included)")


def test_chart_counts_paris_days() -> None:
    # The same question on either side of Paris midnight draws a different chart.
    today = NOW.date()
    before = daily_chart([LoggedQuestion(_at(11, 27, 22, 50), None, "handed")], today)
    after = daily_chart([LoggedQuestion(_at(11, 27, 23, 10), None, "handed")], today)
    same_day = daily_chart([LoggedQuestion(_at(11, 28, 0, 10), None, "handed")], today)
    assert before != after and after == same_day


def test_matplotlib_is_not_imported_with_the_module() -> None:
    code = "import sys, bot.core.stats; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# -- a reply with an image, through the channels ------------------------------------------------


@pytest_asyncio.fixture
async def bot(store: Store, assistant: Assistant, clock: Clock) -> AsyncIterator[Bot]:
    async with running_bot(store, assistant, clock) as running:
        yield running


def _chart() -> bytes:
    png = build_report(QUESTIONS, TICKETS, NOW, intent_titles=TITLES).chart_png
    assert png is not None
    return png


@pytest.mark.asyncio
async def test_image_reply_is_sent_as_a_captioned_photo(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = _chart()
    caption = "<b>Statistiques</b>\n<pre>Questions   6   10</pre>"

    def stats(incoming: Incoming, **kwargs: Any) -> Outcome:
        return Outcome([Reply(caption, [Button("Actualiser", "stats.refresh")], image=png)])

    monkeypatch.setattr(bot.assistant, "handle", stats)
    erun = bot.api.user(4004)
    mark = bot.api.mark()
    update = bot.api.send_text(erun, "/stats")
    photo = await bot.api.wait_call("sendPhoto", chat_id=erun["id"], after=mark)
    await bot.settle(update)
    assert photo.params["photo"] == png
    assert photo.params["caption"] == caption
    assert photo.params["parse_mode"] == "HTML"
    assert labels(photo) == ["Actualiser"]
    assert photo.result["photo"] and photo.result["caption"] == caption
    assert bot.api.calls_of("sendMessage", chat_id=erun["id"], after=mark) == []


@pytest.mark.asyncio
async def test_image_with_a_long_text_comes_first_then_the_text_with_the_buttons(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = _chart()
    text = build_report(QUESTIONS, TICKETS, NOW, intent_titles=TITLES, chart=False).text
    assert len(text) > 1024

    def stats(incoming: Incoming, **kwargs: Any) -> Outcome:
        return Outcome([Reply(text, [Button("Actualiser", "stats.refresh")], image=png)])

    monkeypatch.setattr(bot.assistant, "handle", stats)
    erun = bot.api.user(4005)
    mark = bot.api.mark()
    update = bot.api.send_text(erun, "/stats")
    message = await bot.api.wait_call("sendMessage", chat_id=erun["id"], after=mark)
    await bot.settle(update)
    photos = bot.api.calls_of("sendPhoto", chat_id=erun["id"], after=mark)
    assert len(photos) == 1 and photos[0].params["photo"] == png
    assert "caption" not in photos[0].params and labels(photos[0]) == []
    assert photos[0].at < message.at
    assert message.params["text"] == text and labels(message) == ["Actualiser"]


def test_multipart_upload_is_decoded_with_the_file_as_bytes() -> None:
    import httpx

    png = PNG_SIGNATURE + b"\r\n--not-a-boundary\r\n\x00\xff"
    request = httpx.Request(
        "POST",
        "http://127.0.0.1/botX/sendPhoto",
        data={"chat_id": "42", "caption": "12", "reply_markup": '{"inline_keyboard": []}'},
        files={"photo": ("photo.png", png, "image/png")},
    )
    body = request.read()
    params = decode_params(request.headers["content-type"], body)
    assert params == {
        "chat_id": 42,
        "caption": "12",  # a caption stays a string even when it looks like a number
        "reply_markup": {"inline_keyboard": []},
        "photo": png,
    }


class _ImageCore:
    """Answers every message with a text and a chart."""

    def __init__(self, png: bytes) -> None:
        self.png = png

    def handle(self, incoming: Incoming, **kwargs: Any) -> Outcome:
        return Outcome([Reply("<b>Statistiques</b>", image=self.png)])


def test_console_writes_the_image_to_a_file_and_says_where() -> None:
    png = _chart()
    console = Console(_ImageCore(png), None)  # type: ignore[arg-type]
    out = io.StringIO()
    console.run_interactive(io.StringIO("/stats\n"), out)
    found = re.search(r"\[image enregistrée : (\S+\.png)\]", out.getvalue())
    assert found is not None
    path = Path(found.group(1))
    try:
        assert path.read_bytes() == png
    finally:
        path.unlink()


@pytest.mark.asyncio
async def test_pressed_button_answered_with_an_image_gets_a_new_photo_and_loses_its_buttons(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = _chart()

    def stats(incoming: Incoming, **kwargs: Any) -> Outcome:
        if incoming.press is None:
            return Outcome([Reply("Voir les chiffres ?", [Button("Actualiser", "stats.go")])])
        return Outcome([Reply("<b>Statistiques</b>", image=png, edits_pressed=True)])

    monkeypatch.setattr(bot.assistant, "handle", stats)
    erun = bot.api.user(4006)
    offer = await bot.ask(erun, "/stats")
    mark = bot.api.mark()
    update = bot.api.press(erun, offer.result, "Actualiser")
    photo = await bot.api.wait_call("sendPhoto", chat_id=erun["id"], after=mark)
    await bot.settle(update)
    assert photo.params["caption"] == "<b>Statistiques</b>"
    # A text message cannot be edited into a photo: its buttons are taken away instead.
    unbuttoned = bot.api.calls_of("editMessageReplyMarkup", chat_id=erun["id"], after=mark)
    assert [call.params["message_id"] for call in unbuttoned] == [offer.result["message_id"]]
    assert "reply_markup" not in bot.api.messages[(erun["id"], offer.result["message_id"])]
