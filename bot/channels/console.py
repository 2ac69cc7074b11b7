"""The terminal adapter: same core as Telegram, buttons shown as numbered choices.

The console numbers the buttons it shows and turns a number into the button's id; a label
typed or pressed is resolved by the core, as for a label typed on Telegram.
"""

from __future__ import annotations

import json
import tempfile
from typing import IO, Any

from bot.core.assistant import Assistant
from bot.core.messages import Button, Incoming, Outcome
from bot.core.state import ConversationState
from bot.settings import Settings
from intents.kb import html_to_text


class Console:
    """One speaker in the terminal, interactive or JSONL."""

    def __init__(self, assistant: Assistant, login: str | None) -> None:
        self.assistant = assistant
        self.login = login
        self.speaker_key = f"console:{login}" if login else "console:public"
        # The buttons of the latest answer that had some, numbered across its replies.
        self.last_buttons: list[Button] = []

    @classmethod
    def create(
        cls, settings: Settings, store: Any, *, login: str | None, structure: str | None
    ) -> Console:
        """A console on that store, speaking as `login` (checked in the directory)."""
        if login is not None:
            user = store.directory.user_by_login(login)
            if user is None:
                raise LookupError(f"Compte inconnu dans l'annuaire : {login}")
        console = cls(Assistant.create(settings, store), login)
        console.last_buttons = console.stored_buttons()
        return console

    def stored_buttons(self) -> list[Button]:
        """The buttons of the latest answer of an earlier run: conversations persist, and a
        later run may press « Confirmer » on what the previous one left pending."""
        data = self.assistant.services.conversations.get(self.speaker_key)
        state = ConversationState.from_json(data)
        return [
            Button(state.buttons[button_id].label, button_id)
            for button_id in state.last_buttons
            if button_id in state.buttons
        ]

    def send(self, text: str | None = None, press: str | None = None) -> Outcome:
        """Hand one message, or the button chosen by its number or label, to the core."""
        if press is not None:
            press = self.button_id(press) or press
        incoming = Incoming(self.speaker_key, text=text, press=press)
        outcome = self.assistant.handle(incoming, login=self.login)
        buttons = [button for reply in outcome.replies for button in reply.buttons]
        if buttons:
            self.last_buttons = buttons
        return outcome

    def button_id(self, choice: str) -> str | None:
        """The id of the button shown with that number (from 1)."""
        wanted = choice.strip()
        if wanted.isdigit() and 1 <= int(wanted) <= len(self.last_buttons):
            return self.last_buttons[int(wanted) - 1].id
        return None

    # -- JSONL --------------------------------------------------------------------------
    def run_jsonl(self, source: IO[str], sink: IO[str]) -> int:
        """One JSON object a line in ({"text"} or {"press"}), one a line out (cli-contract)."""
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
                        # An image (a /stats chart) is given as the path of its file.
                        | ({"image": saved_image(r.image)} if r.image is not None else {})
                        for r in outcome.replies
                    ],
                },
            )
        return 0

    # -- interactive --------------------------------------------------------------------
    def run_interactive(self, source: IO[str], sink: IO[str]) -> int:
        """A prompt until end of input or « /quitter »; buttons are numbered choices."""
        who = f" (en tant que {self.login})" if self.login else ""
        sink.write(
            f"Assistant Rentrée ENT{who}. Posez votre question ; un numéro ou un libellé choisit "
            "un bouton ; « /quitter » pour sortir.\n"
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
            # A number presses the button shown with it; anything else is a message for the
            # core, which reads a typed label or « oui » as the button it stands for.
            if self.button_id(text) is not None:
                outcome = self.send(press=text)
            else:
                outcome = self.send(text=text)
            number = 0
            for reply in outcome.replies:
                sink.write("\n" + html_to_text(reply.text) + "\n")
                if reply.image is not None:
                    sink.write(f"  [image enregistrée : {saved_image(reply.image)}]\n")
                # Buttons are numbered in one sequence across the replies, as send() keeps them.
                for button in reply.buttons:
                    number += 1
                    opens = f" : {button.url}" if button.url else ""
                    sink.write(f"  [{number}] {button.label}{opens}\n")


def saved_image(image: bytes) -> str:
    """Write a reply's PNG to a temporary file, left for the user to open; its path."""
    with tempfile.NamedTemporaryFile(
        prefix="assistant-rentree-", suffix=".png", delete=False
    ) as file:
        file.write(image)
    return file.name


def _write(sink: IO[str], item: dict) -> None:
    sink.write(json.dumps(item, ensure_ascii=False) + "\n")
    sink.flush()
