"""The terminal adapter: same core as Telegram, buttons shown as numbered choices."""

from __future__ import annotations

import json
from typing import IO, Any

from bot.core.assistant import Assistant
from bot.core.messages import Incoming, Outcome
from bot.settings import Settings
from intents.kb import html_to_text


class Console:
    def __init__(self, assistant: Assistant, login: str | None) -> None:
        self.assistant = assistant
        self.login = login
        self.speaker_key = f"console:{login}" if login else "console:public"
        self.last_buttons: list[tuple[str, str]] = []

    @classmethod
    def create(
        cls, settings: Settings, store: Any, *, login: str | None, structure: str | None
    ) -> Console:
        if login is not None:
            user = store.directory.user_by_login(login)
            if user is None:
                raise LookupError(f"Compte inconnu dans l'annuaire : {login}")
        return cls(Assistant.create(settings, store), login)

    def send(self, text: str | None = None, press: str | None = None) -> Outcome:
        if press is not None:
            press = self._button_id(press)
        incoming = Incoming(self.speaker_key, self.speaker_key, text=text, press=press)
        outcome = self.assistant.handle(incoming, login=self.login)
        buttons = [(b.label, b.id) for r in outcome.replies for b in r.buttons]
        if buttons:
            self.last_buttons = buttons
        return outcome

    def _button_id(self, choice: str) -> str:
        """A number or a label of the last buttons; otherwise handed to the core as is."""
        wanted = choice.strip()
        if wanted.isdigit() and 1 <= int(wanted) <= len(self.last_buttons):
            return self.last_buttons[int(wanted) - 1][1]
        for label, button_id in self.last_buttons:
            if label.lower() == wanted.lower():
                return button_id
        return wanted

    # -- JSONL --------------------------------------------------------------------------
    def run_jsonl(self, source: IO[str], sink: IO[str]) -> int:
        for line in source:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                if not isinstance(item, dict):
                    raise ValueError
                text, press = item.get("text"), item.get("press")
                if (
                    not isinstance(text, str | None)
                    or not isinstance(press, str | None)
                    or (text is None and press is None)
                ):
                    raise ValueError
            except ValueError:
                _write(
                    sink,
                    {
                        "in": line.strip()[:200],
                        "error": 'ligne invalide : {"text": …} ou {"press": …} attendu',
                    },
                )
                continue
            outcome = self.send(text=text, press=press)
            _write(
                sink,
                {
                    "in": item,
                    "intent": outcome.intent,
                    "replies": [
                        {"text": html_to_text(r.text), "buttons": [b.label for b in r.buttons]}
                        for r in outcome.replies
                    ],
                },
            )
        return 0

    # -- interactive --------------------------------------------------------------------
    def run_interactive(self, source: IO[str], sink: IO[str]) -> int:
        who = f" (en tant que {self.login})" if self.login else ""
        sink.write(
            f"Assistant Rentrée ENT{who}. Posez votre question ; un numéro choisit un bouton ; "
            "« /quitter » pour sortir.\n"
        )
        while True:
            sink.write("\nvous> ")
            sink.flush()
            line = source.readline()
            if not line:
                sink.write("\n")
                return 0
            text = line.strip()
            if text in {"/quitter", "/quit", "/exit"}:
                return 0
            press = text if text.isdigit() and self.last_buttons else None
            outcome = self.send(text=None if press else text, press=press)
            number = 0
            for reply in outcome.replies:
                sink.write("\n" + html_to_text(reply.text) + "\n")
                # Buttons are numbered in one sequence across the replies, as send() keeps them.
                for button in reply.buttons:
                    number += 1
                    sink.write(f"  [{number}] {button.label}\n")


def _write(sink: IO[str], item: dict) -> None:
    sink.write(json.dumps(item, ensure_ascii=False) + "\n")
    sink.flush()
