"""Bad input: a clear French reply, never a traceback, nothing rendered as markup."""

from __future__ import annotations

import pytest

from bot.core.messages import Incoming


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
def test_any_text_gets_a_french_reply_and_no_markup_injection(talk, text: str) -> None:
    for login in (None, "claire.martin"):
        seen = talk(login).say(text)
        assert seen.outcome.replies, text
        for reply in seen.outcome.replies:
            assert "Traceback" not in reply.text
            assert "<script>" not in reply.text
            assert "49" not in reply.text or "{{" not in text


def test_user_text_echoed_back_is_escaped(talk) -> None:
    seen = talk("claire.martin").say("détache <b>Mme</b> Zzyzx")
    for reply in seen.outcome.replies:
        assert "<b>Mme</b>" not in reply.text


def test_long_message_is_refused_politely(say) -> None:
    seen = say("bonjour " * 3000)
    assert "trop long" in seen.text


def test_non_text_messages_get_a_polite_reply(assistant) -> None:
    outcome = assistant.handle(Incoming("tg:9", "tg:9", unsupported="photo"))
    assert "messages écrits" in outcome.replies[0].text


def test_group_chat_only_answers_when_addressed(assistant) -> None:
    silent = assistant.handle(
        Incoming("tg:9", "tg:-5", text="educonnect ?", private_chat=False, addressed=False)
    )
    assert silent.replies == []
    answered = assistant.handle(
        Incoming(
            "tg:9", "tg:-5", text="comment activer educonnect", private_chat=False, addressed=True
        )
    )
    assert "FranceConnect" in answered.replies[0].text


def test_unknown_button_is_answered_clearly(talk) -> None:
    seen = talk(None).press_id("nothing-like-this")
    assert "plus valide" in seen.text


def test_internal_error_becomes_an_apology(assistant, monkeypatch) -> None:
    def explode(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(assistant.understander, "understand", explode)
    outcome = assistant.handle(Incoming("tg:9", "tg:9", text="bonjour"))
    assert "problème technique" in outcome.replies[0].text
