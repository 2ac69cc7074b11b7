"""The simulated users of `bench load`: parents asking, directors confirming (some pressing
Confirmer on both instances at once), each update delivered as Telegram does and each answer
matched to the update it answers.

A button press is matched exactly: the bot answers every press by its callback query id
(answerCallbackQuery), so one id answered twice is one update handled twice. A message in a
private chat is answered without quoting it (the bot quotes only in groups): its answers are
those its chat received from its sending until the user's next update, which is exact because
a user sends nothing before the previous update is answered (the « window » of the update).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.channels.telegram.fake_bot_api import Call, FakeBotApi
from bot.channels.telegram.load_processes import SECRET, Instance
from bot.channels.telegram.webhook import SECRET_HEADER
from bot.core.messages import APOLOGY

PARENT_QUESTIONS = (
    "comment activer mon compte educonnect",
    "j'ai oublié mon mot de passe",
    "bonjour",
    "c'est quoi l'application one pocket ?",
    "mon enfant n'a pas reçu ses identifiants",
    "merci beaucoup",
)
DIRECTORS = ("claire.martin", "marc.dubois")
DONE = "C'est fait"
FIRST_USER = 800_000_000
ANSWERS = ("sendMessage", "editMessageText")
STEP_TIMEOUT = 60.0
# Telegram retries a webhook delivery until it gets a 200; we give up after this long.
DELIVERY_SECONDS = 180.0
# POSTs under way at once: httpx's pool grows quadratically slow with queued requests.
MAX_POSTS = 48


def is_apology(call: Call) -> bool:
    """Whether the call is « réessayez dans un instant »."""
    return APOLOGY[:40] in str(call.params.get("text", ""))


def failed(call: Call) -> bool:
    """Whether the fake Bot API refused the call (a « not modified » edit, for instance)."""
    return isinstance(call.result, Exception)


@dataclass
class Sent:
    """One update delivered, and what identifies its answer."""

    update_id: int
    chat: int
    # ("message", message_id) or ("press", callback query id).
    key: tuple[str, Any]
    # The chat's answers from index `since` up to `until` (the next update's) are this one's.
    since: int = 0
    until: int | None = None
    apologised: bool = False


@dataclass
class Tally:
    """What the generator itself counted during the run."""

    sent: list[Sent] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    confirmations: int = 0
    double_executions: int = 0
    # Deliveries an instance did not take (down, restarting): sent again to it later.
    redeliveries: int = 0
    # Of those, the ones where the request may have arrived (no answer rather than refused).
    uncertain: int = 0


class Replies:
    """The bot's calls to the fake Bot API, by chat and by the update they answer."""

    def __init__(self, api: FakeBotApi) -> None:
        self.by_chat: dict[int, list[Call]] = {}
        # How many times each callback query was answered.
        self.queries: Counter[str] = Counter()
        self._events: dict[int, asyncio.Event] = {}
        self._query_chats: dict[str, int] = {}
        api.listeners.append(self._on_call)

    def _on_call(self, call: Call) -> None:
        chat = call.chat_id
        if call.method == "answerCallbackQuery":
            query = str(call.params.get("callback_query_id"))
            self.queries[query] += 1
            # The call does not name the chat: the step waiting for that query does.
            chat = self._query_chats.get(query)
            if chat in self._events:
                self._events[chat].set()
            return
        if call.method not in ANSWERS or not isinstance(chat, int):
            return
        self.by_chat.setdefault(chat, []).append(call)
        if chat in self._events:
            self._events[chat].set()

    def count(self, chat: int) -> int:
        """Answers to that chat so far."""
        return len(self.by_chat.get(chat, []))

    def window(self, one: Sent) -> list[Call]:
        """The answers that are this update's (see the module's docstring)."""
        return self.by_chat.get(one.chat, [])[one.since : one.until]

    def settled(self, sent: list[Sent]) -> bool:
        """Whether every update of a step is answered (or apologised for)."""
        answers = self.window(sent[0])
        if any(is_apology(call) for call in answers):
            return True
        if any(one.key[0] == "press" and not self.queries[one.key[1]] for one in sent):
            return False
        return len(answers) >= len(sent)

    async def wait(self, sent: list[Sent]) -> list[Call]:
        """Until the step is settled (or STEP_TIMEOUT); the step's answers so far."""
        chat = sent[0].chat
        event = self._events.setdefault(chat, asyncio.Event())
        self._query_chats.update((s.key[1], chat) for s in sent if s.key[0] == "press")
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                while not self.settled(sent):
                    event.clear()
                    await event.wait()
        except TimeoutError:
            pass
        finally:
            self._events.pop(chat, None)
        return self.window(sent[0])


class Generator:
    """The simulated users, posting to the instances and matching what comes back."""

    def __init__(
        self, api: FakeBotApi, instances: list[Instance], think: tuple[float, float]
    ) -> None:
        self.api = api
        self.instances = instances
        self.think = think
        self.tally = Tally()
        self.replies = Replies(api)
        self.client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=MAX_POSTS))
        self._posts = asyncio.Semaphore(MAX_POSTS)
        # Each user's last step: its window closes when the next one opens.
        self._last: dict[int, list[Sent]] = {}

    async def post(self, update: dict[str, Any], instance: Instance) -> None:
        """Deliver one update as Telegram does: to the same URL, again, until it answers 200."""
        deadline = time.monotonic() + DELIVERY_SECONDS
        pause = 0.1
        while time.monotonic() < deadline:
            try:
                async with self._posts:
                    answer = await self.client.post(
                        instance.url, json=update, headers={SECRET_HEADER: SECRET}
                    )
                if answer.status_code == 200:
                    return
            except httpx.ConnectError:
                pass  # refused: the instance is down, nothing arrived
            except httpx.HTTPError:
                self.tally.uncertain += 1
            self.tally.redeliveries += 1
            await asyncio.sleep(pause)
            pause = min(1.0, pause * 2)
        raise RuntimeError(f"update {update['update_id']} refused for {DELIVERY_SECONDS} s")

    async def step(self, chat: int, *updates: dict[str, Any]) -> list[Call]:
        """Send updates at once (the n-th to the n-th instance after the user's own) and wait
        until each is answered; the chat's answers since."""
        since = self.replies.count(chat)
        for earlier in self._last.get(chat, []):
            earlier.until = since
        sent = [_sent(update, chat, since) for update in updates]
        self._last[chat] = sent
        self.tally.sent.extend(sent)
        started = time.perf_counter()
        targets = [self.instances[(chat + i) % len(self.instances)] for i in range(len(updates))]
        await asyncio.gather(*(self.post(u, t) for u, t in zip(updates, targets, strict=True)))
        answers = await self.replies.wait(sent)
        if answers:
            self.tally.latencies.append(answers[0].at - started)
        if any(is_apology(call) for call in answers):
            for one in sent:
                one.apologised = True
        return answers

    async def pause(self, rng: random.Random) -> None:
        """A person reads the answer and types the next message."""
        await asyncio.sleep(rng.uniform(*self.think))

    async def parent(self, user_id: int, rng: random.Random) -> None:
        """A parent asks three questions, one after the other."""
        user = self.api.user(user_id, "Parent")
        for question in rng.sample(PARENT_QUESTIONS, 3):
            await self.step(user_id, self.api.send_text(user, question))
            await self.pause(rng)

    async def until_answered(self, user: dict[str, Any], said: str) -> list[Call]:
        """Say it, and again while the answer is « réessayez dans un instant », as a person
        would (a few times)."""
        for _ in range(5):
            answers = await self.step(user["id"], self.api.send_text(user, said))
            if not any(is_apology(call) for call in answers):
                break
            await asyncio.sleep(0.5)
        return answers

    async def director(self, user_id: int, code: str, twice: bool, rng: random.Random) -> None:
        """A director links their account, then blocks and unblocks the parents, confirming
        each; with `twice`, each Confirmer is pressed on both instances at once."""
        user = self.api.user(user_id, "Direction")
        await self.until_answered(user, f"/connexion {code}")
        for order in ("bloque les parents", "débloque les parents"):
            await self.pause(rng)
            answers = await self.until_answered(user, order)
            proposal = next((c for c in answers if _has_button(c, "Confirmer")), None)
            if proposal is None or not isinstance(proposal.result, dict):
                continue
            presses = [self.api.press(user, proposal.result, "Confirmer")]
            if twice:
                presses.append(self.api.press(user, proposal.result, "Confirmer"))
            self.tally.confirmations += 1
            confirmed = await self.step(user_id, *presses)
            if sum(DONE in str(c.params.get("text", "")) for c in confirmed if not failed(c)) > 1:
                self.tally.double_executions += 1

    async def close(self) -> None:
        """Close the HTTP connections to the instances."""
        with contextlib.suppress(httpx.HTTPError):
            await self.client.aclose()


def _sent(update: dict[str, Any], chat: int, since: int) -> Sent:
    if "callback_query" in update:
        key = ("press", update["callback_query"]["id"])
    else:
        key = ("message", update["message"]["message_id"])
    return Sent(update["update_id"], chat, key, since)


def _has_button(call: Call, label: str) -> bool:
    rows = (call.params.get("reply_markup") or {}).get("inline_keyboard") or []
    return any(button.get("text") == label for row in rows for button in row)
