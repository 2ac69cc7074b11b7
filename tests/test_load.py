"""Two webhook instances over one PostgreSQL database under load, with faults (connections
killed every second, one instance restarted mid-run): nothing lost, no update handled twice,
no change executed twice, no traceback shown."""

from __future__ import annotations

import asyncio

from bot.channels.telegram.load import format_load, run_load
from tests.support import PG_URL, need_postgres


def test_two_instances_lose_nothing_through_killed_connections_and_a_restart() -> None:
    need_postgres()
    result = asyncio.run(run_load(PG_URL, users=50, faults=True, instances=2, arrivals=10))
    report = format_load(result)
    # 48 parents ask 3 questions, 2 directors link and confirm: every update was sent.
    assert result.sent >= 48 * 3 + 2, report
    assert result.lost == 0, report
    assert result.duplicates == 0, report
    assert result.double_executions == 0, report
    assert result.tracebacks_to_users == 0, report
    # The faults did happen while users were talking: connections killed, and updates sent
    # to the restarting instance refused, then delivered again once it was back.
    assert result.killed_connections > 0, report
    assert result.restarts == 1, report
    assert result.redeliveries > 0, report
    # Directors did confirm changes, each executed once.
    assert result.confirmations > 0, report
    assert result.done_entries <= result.confirmations, report


def test_the_checks_see_an_update_handled_twice_and_one_never_answered() -> None:
    from types import SimpleNamespace

    from bot.channels.telegram.fake_bot_api import Call
    from bot.channels.telegram.load_report import LoadResult, count
    from bot.channels.telegram.load_users import Replies, Sent, Tally

    api = SimpleNamespace(listeners=[])
    replies = Replies(api)  # type: ignore[arg-type]
    tally = Tally(
        sent=[
            Sent(1, 7, ("message", 10), since=0, until=2),  # answered twice
            Sent(2, 7, ("message", 11), since=2, until=3),  # answered once
            Sent(3, 7, ("message", 12), since=3),  # never answered
            Sent(4, 7, ("press", "q1")),  # its callback query answered twice
        ]
    )
    for text in ("Réponse A", "Réponse A", "Réponse B"):
        api.listeners[0](Call("sendMessage", {"chat_id": 7, "text": text}))
    for _ in range(2):
        api.listeners[0](Call("answerCallbackQuery", {"callback_query_id": "q1"}))
    result = LoadResult(users=1, instances=1, faults=False)
    count(SimpleNamespace(tally=tally, replies=replies), result)  # type: ignore[arg-type]
    assert (result.duplicates, result.lost) == (2, 1)
