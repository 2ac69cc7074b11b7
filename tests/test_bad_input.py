"""Bad input: a clear French reply, never a traceback, nothing rendered as markup."""

from __future__ import annotations

import logging

import pytest

from bot.core.messages import APOLOGY, Incoming
from tests.support import DIRECTOR


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\n\t",
        "🙂🙂🙂",
        "\x00\x01\x02",
        "a" * 20_000,
        "é" * 5000,
        "?",
        "...",
        "{{ 7*7 }}",
        "{% for x in range(10) %}x{% endfor %}",
        "<b>gras</b> <script>alert(1)</script>",
        "Wie aktiviere ich mein Konto?",
        "¿Cómo activo mi cuenta?",
        "كيف أفعّل حسابي",
        "/",
        "/inconnue",
        "/start ../../etc/passwd",
        "/connexion",
        "/bloquer",
        "DROP TABLE users; --",
    ],
)
def test_any_text_gets_a_french_reply_and_no_markup_injection(
    talk, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    caplog.set_level(logging.ERROR)
    for login in (None, DIRECTOR):
        seen = talk(login).say(text)
        assert seen.outcome.replies, text
        for reply in seen.outcome.replies:
            # The core turns any exception into the apology: a crash must not pass as a reply.
            assert APOLOGY not in reply.text and "problème technique" not in reply.text
            assert "Traceback" not in reply.text
            assert "<script>" not in reply.text
            assert "49" not in reply.text or "{{" not in text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_user_text_echoed_back_is_escaped(talk) -> None:
    director = talk(DIRECTOR)
    seen = director.say("détache <b>Mme</b> Zzyzx")
    assert seen.intent == "action.detach_teacher"
    for reply in seen.outcome.replies:
        assert "<b>Mme</b>" not in reply.text
    # An unknown command is quoted back: it must arrive as text, not as markup.
    echoed = director.say("/<b>x</b>")
    assert "/&lt;b&gt;x&lt;/b&gt;" in echoed.outcome.replies[0].text


def test_long_message_is_refused_politely(say) -> None:
    seen = say("bonjour " * 3000)
    assert "trop long" in seen.text


def test_non_text_messages_get_a_polite_reply(assistant) -> None:
    outcome = assistant.handle(Incoming("tg:9", unsupported="photo"))
    assert "messages écrits" in outcome.replies[0].text


def test_group_chat_only_answers_when_addressed(assistant) -> None:
    silent = assistant.handle(
        Incoming("tg:9", text="educonnect ?", private_chat=False, addressed=False)
    )
    assert silent.replies == []
    answered = assistant.handle(
        Incoming("tg:9", text="comment activer educonnect", private_chat=False, addressed=True)
    )
    assert "FranceConnect" in answered.replies[0].text


def test_unknown_button_is_answered_clearly(talk) -> None:
    seen = talk(None).press_id("nothing-like-this")
    assert "plus valide" in seen.text


def test_internal_error_becomes_an_apology(
    assistant, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(assistant.understander, "understand", explode)
    outcome = assistant.handle(Incoming("tg:9", text="bonjour"))
    assert [r.text for r in outcome.replies] == [APOLOGY]
    # The detail goes to the operator's log, never to the user.
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
    assert "boom" not in outcome.replies[0].text
