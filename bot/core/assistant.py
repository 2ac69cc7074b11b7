"""The transport-free core: one message in (who, where, text or button), replies out."""

from __future__ import annotations

import hashlib
import html
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.messages import Button, Incoming, Outcome, Reply
from bot.settings import Settings
from bot.storage.accounts import AccountError
from intents import admin as _admin  # noqa: F401 - registers the director intents
from intents import faq as _faq  # noqa: F401 - registers the knowledge intents
from intents.domain import Role, Speaker
from intents.kb import KnowledgeBase, html_to_text
from intents.nlu.entities import EntityReader
from intents.nlu.matcher import OUT_OF_SCOPE, Analysis, Matcher
from intents.nlu.normalize import fold
from intents.nlu.understanding import Understander, Understanding
from intents.registry import Permission, registry
from intents.turn import Choice, Proposal, Response, Say, Turn

log = logging.getLogger(__name__)

PENDING_LIFETIME = timedelta(minutes=10)
# Identities are reused this long between messages; a confirmed change always re-reads them,
# so a revoked link can at most see a proposal, never execute it.
SPEAKER_SECONDS = 5.0
FORM_LIFETIME = timedelta(minutes=30)
BUTTONS_KEPT = 40
CONFIRM_LABEL = "Confirmer"
CANCEL_LABEL = "Annuler"
MAX_TEXT = 4000
LINK_HINT = (
    "Pour que l'assistant agisse sur l'annuaire de votre école, la direction demande un code à "
    "son eRun puis l'envoie ici en privé : <code>/connexion CODE</code>."
)
COMMAND_INTENTS = {
    "aide": "dialogue.help",
    "help": "dialogue.help",
    "bloquer": "action.block",
    "debloquer": "action.unblock",
    "rattacher": "action.attach_teacher",
    "detacher": "action.detach_teacher",
    "supprimer_groupe": "action.delete_group",
    "supprimer_compte": "action.remove_manual_account",
    "gar": "action.gar_managers",
    "groupes": "query.groups",
    "checklist": "query.checklist",
    "sans_classe": "query.teachers_without_class",
    "comptes_manuels": "query.manual_accounts",
    "erun": "dialogue.human",
}
DEEP_LINK_ALIASES = {
    "educonnect": "educonnect.activate",
    "activer": "educonnect.activate",
    "motdepasse": "educonnect.forgot_credentials",
    "identifiants": "accounts.identifiers",
    "pocket": "mobile.one_pocket",
    "application": "mobile.one_pocket",
    "rentree": "accounts.rentree",
    "aide": "dialogue.help",
}
# Words of a school's name that do not tell one school from another.
SCHOOL_WORDS = {
    "ecole",
    "primaire",
    "elementaire",
    "maternelle",
    "groupe",
    "scolaire",
    "les",
    "des",
    "rpi",
}
CANCEL_WORDS = {"annule", "annuler", "stop", "laisse tomber", "abandonne", "non merci", "rien"}


@dataclass
class State:
    """A speaker's conversation, persisted as JSON so that a restart loses nothing."""

    data: dict[str, Any] = field(default_factory=dict)

    @property
    def buttons(self) -> dict[str, dict[str, Any]]:
        return self.data.setdefault("buttons", {})


class Assistant:
    """Understands a message, checks the speaker's rights once, runs the handler."""

    def __init__(
        self,
        settings: Settings,
        store: Any,
        kb: KnowledgeBase,
        matcher: Matcher,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.kb = kb
        self.matcher = matcher
        self.clock = clock or (lambda: datetime.now(UTC))
        self.entities = EntityReader(kb.lexicon)
        self.understander = Understander(kb, matcher, self.entities, settings.confidence_floor)
        self._speakers: dict[tuple[str, str | None], tuple[float, Speaker]] = {}

    @classmethod
    def create(
        cls, settings: Settings, store: Any, *, clock: Callable[[], datetime] | None = None
    ) -> Assistant:
        kb = KnowledgeBase()
        return cls(settings, store, kb, Matcher(kb), clock=clock)

    # -- identity --------------------------------------------------------------------------
    def speaker_for(
        self, speaker_key: str, login: str | None = None, *, fresh: bool = False
    ) -> Speaker:
        """The speaker's account and role; reused a few seconds unless `fresh` (executions)."""
        key = (speaker_key, login)
        cached = self._speakers.get(key)
        now = time.monotonic()
        if not fresh and cached is not None and now - cached[0] < SPEAKER_SECONDS:
            return cached[1]
        speaker = self._resolve_speaker(speaker_key, login)
        self._speakers[key] = (now, speaker)
        if len(self._speakers) > 10_000:
            self._speakers.clear()
        return speaker

    def forget_speaker(self, speaker_key: str) -> None:
        """Drop cached identities of this speaker (after /connexion, /deconnexion)."""
        for key in [k for k in self._speakers if k[0] == speaker_key]:
            del self._speakers[key]

    def _resolve_speaker(self, speaker_key: str, login: str | None) -> Speaker:
        """Resolve the transport identity to a directory account and its role."""
        if login is None and self.store is not None:
            login = self.store.accounts.login_for(speaker_key)
        if not login or self.store is None:
            return Speaker(key=speaker_key)
        directory = self.store.directory
        user = directory.user_by_login(login)
        if user is None or not user.is_live:
            return Speaker(key=speaker_key)
        role, structures = Role.PUBLIC, tuple(user.structures)
        if "DIRECTOR" in user.functions:
            role = Role.DIRECTOR
        elif "ERUN" in user.functions:
            role = Role.ERUN
            home = directory.structure(user.home_structure) if user.home_structure else None
            if home is not None:
                same = [
                    s.id
                    for s in directory.structures()
                    if s.circonscription == home.circonscription
                ]
                structures = tuple([home.id] + [s for s in same if s != home.id])
        elif user.profile == "Relative":
            role = Role.PARENT
        elif user.profile in {"Teacher", "Personnel"}:
            role = Role.TEACHER
        if user.home_structure in structures:
            structures = (user.home_structure,) + tuple(
                s for s in structures if s != user.home_structure
            )
        return Speaker(
            key=speaker_key,
            login=login,
            user_id=user.id,
            display_name=user.full_name,
            role=role,
            structures=structures,
        )

    # -- entry point -----------------------------------------------------------------------
    def handle(self, incoming: Incoming, *, login: str | None = None) -> Outcome:
        """One message in, replies out; never raises for anything a user can send."""
        try:
            return self._handle(incoming, login)
        except Exception:  # the user must never see a traceback
            log.exception("failure while handling a message from %s", incoming.speaker_key)
            return Outcome(
                [
                    Reply(
                        "Désolé, un problème technique m'empêche de répondre. Réessayez dans un "
                        "instant ; si cela persiste, contactez votre eRun de circonscription."
                    )
                ]
            )

    def _handle(self, incoming: Incoming, login: str | None) -> Outcome:
        if incoming.press is None and self.store is not None:
            # A typed message never carries out a change (only « Confirmer » does), so its
            # reads and the state write share one transaction: one commit per message.
            with self.store.transaction():
                return self._handle_in(incoming, login)
        return self._handle_in(incoming, login)

    def _handle_in(self, incoming: Incoming, login: str | None) -> Outcome:
        now = self.clock()
        speaker = self.speaker_for(incoming.speaker_key, login)
        state = State(self.store.conversations.get(incoming.speaker_key) if self.store else {})
        session = _Session(self, incoming, speaker, state, now, login)
        outcome = session.run()
        # The session's speaker, not the one above: /connexion and /deconnexion change it.
        menu = "director" if session.speaker.role == Role.DIRECTOR else "public"
        if state.data.get("menu", "public") != menu:
            outcome.menu = menu
        state.data["menu"] = menu
        if self.store is not None:
            self.store.conversations.put(incoming.speaker_key, state.data)
        return outcome

    def understand(self, text: str, structure_id: str | None = None) -> Understanding:
        directory = self.store.directory if (self.store and structure_id) else None
        return self.understander.understand(text, directory, structure_id)


def owner_tag(speaker_key: str) -> str:
    return hashlib.sha256(speaker_key.encode()).hexdigest()[:6]


class _Session:
    """The handling of one incoming message, apart from the long-lived Assistant."""

    def __init__(
        self,
        assistant: Assistant,
        incoming: Incoming,
        speaker: Speaker,
        state: State,
        now: datetime,
        login: str | None = None,
    ) -> None:
        self.a = assistant
        self.incoming = incoming
        self.speaker = speaker
        self.state = state
        self.now = now
        # The login a trusted transport (the console) asserts, kept for re-checks.
        self.login = login
        self.intent: str | None = None
        self.confidence = 0.0
        self.entities: dict[str, Any] = {}
        self.chosen_structure: str | None = None

    # -- plumbing --------------------------------------------------------------------------
    def outcome(self, response: Response | list[Say], *, edits: bool = False) -> Outcome:
        says = response.says if isinstance(response, Response) else response
        replies = [Reply(say.text, self.buttons_for(say.choices)) for say in says]
        if edits and replies:
            replies[0].edits_pressed = True
        return Outcome(replies, self.intent, self.confidence, self.entities)

    def buttons_for(self, choices: list[Choice]) -> list[Button]:
        tag = owner_tag(self.incoming.speaker_key)
        buttons = []
        stored = self.state.buttons
        for choice in choices:
            button_id = f"{tag}.{secrets.token_urlsafe(8)}"
            stored[button_id] = {"label": choice.label, "payload": choice.payload}
            buttons.append(Button(choice.label, button_id))
        # Only the most recent buttons stay valid; older ones answer "expired".
        while len(stored) > BUTTONS_KEPT:
            stored.pop(next(iter(stored)))
        self.state.data["last_buttons"] = [b.id for b in buttons] or self.state.data.get(
            "last_buttons", []
        )
        return buttons

    def text(self, text: str, choices: list[Choice] | None = None) -> Outcome:
        return self.outcome([Say(text, choices or [])])

    def structure_id(self) -> str | None:
        """The school acted on: the one chosen or named (eRun), else the speaker's first."""
        if self.chosen_structure in self.speaker.structures:
            return self.chosen_structure
        return self.speaker.structures[0] if self.speaker.structures else None

    def school_named(self, text: str) -> str | None:
        """The speaker's school that the message names (« l'école Les Tilleuls », its UAI)."""
        words = set(fold(text).split())
        found = []
        for structure_id in self.speaker.structures:
            structure = self.a.store.directory.structure(structure_id)
            if structure is None:
                continue
            distinctive = {w for w in fold(structure.name).split() if len(w) >= 3} - SCHOOL_WORDS
            if structure_id.lower() in words or (distinctive and distinctive <= words):
                found.append(structure_id)
        return found[0] if len(found) == 1 else None

    def turn(self, intent: str, text: str, entities: dict[str, Any]) -> Turn:
        return Turn(
            speaker=self.speaker,
            text=text,
            intent=intent,
            confidence=self.confidence,
            entities=entities,
            kb=self.a.kb,
            today=self.now.date(),
            now=self.now,
            directory=self.a.store.directory if self.a.store is not None else None,
            structure_id=self.structure_id(),
            private_chat=self.incoming.private_chat,
        )

    def audit(self, action: str, targets: list[str], outcome: str, detail: str) -> None:
        if self.a.store is None:
            return
        self.a.store.audit.record(
            who=self.speaker.login or self.speaker.key,
            action=action,
            targets=targets,
            outcome=outcome,
            detail=html_to_text(detail)[:500],
            structure_id=self.structure_id(),
            at=self.now,
        )

    # -- dispatch --------------------------------------------------------------------------
    def run(self) -> Outcome:
        incoming = self.incoming
        if incoming.unsupported:
            if not incoming.private_chat and not incoming.addressed:
                return Outcome([])
            return self.text(
                "Je ne lis que les messages écrits : posez-moi votre question par écrit, "
                "par exemple « comment activer mon compte EduConnect ? »."
            )
        if incoming.press is not None:
            return self.press(incoming.press)
        text = (incoming.text or "").strip()
        if not incoming.private_chat and not incoming.addressed:
            return Outcome([])
        if not text:
            return self.text(
                "Je n'ai reçu aucun texte. Écrivez votre question, par exemple "
                "« j'ai oublié mon mot de passe EduConnect »."
            )
        if len(text) > MAX_TEXT:
            return self.text(
                f"Votre message est trop long ({len(text)} caractères) : posez votre question "
                "en quelques phrases et je vous réponds."
            )
        if text.startswith("/"):
            return self.command(text)
        form = self.state.data.get("form")
        if form:
            answered = self.continue_form(form, text)
            if answered is not None:
                return answered
        return self.understood(text)

    def understood(self, text: str) -> Outcome:
        if self.speaker.role == Role.ERUN and len(self.speaker.structures) > 1:
            self.chosen_structure = self.school_named(text)
        structure = (
            self.structure_id() if self.speaker.role in (Role.DIRECTOR, Role.ERUN) else None
        )
        u = self.a.understand(text, structure)
        self.intent, self.confidence = u.intent, u.confidence
        self.entities = dict(u.entities)
        if u.intent == OUT_OF_SCOPE:
            return self.out_of_scope(u.analysis)
        if u.ambiguous:
            return self.did_you_mean(u)
        outcome = self.run_intent(u.intent, text, dict(u.entities_internal))
        if u.secondary and outcome.replies:
            extra = self.buttons_for(
                [Choice(f"Et aussi : {self.a.kb.title(u.secondary)}", {"intent": u.secondary})]
            )
            outcome.replies[-1].buttons = extra + outcome.replies[-1].buttons
        return outcome

    def run_intent(self, intent: str, text: str, entities: dict[str, Any]) -> Outcome:
        """Check the speaker's rights once, then run the handler of that intent."""
        self.intent = intent
        info = self.a.kb.intents.get(intent)
        kind = info.kind if info else "faq"
        spec = registry.spec(intent, kind)
        if spec is None:
            return self.out_of_scope(None)
        denial = self.authorize(spec.permission, intent)
        if denial is not None:
            return denial
        if (
            spec.permission == Permission.READ_SCHOOL
            and self.speaker.role == Role.ERUN
            and len(self.speaker.structures) > 1
            and self.chosen_structure is None
        ):
            return self.which_school(intent)
        turn = self.turn(intent, text, entities)
        response = spec.handler(turn)
        return self.after_handler(intent, entities, response)

    def after_handler(self, intent: str, entities: dict[str, Any], response: Response) -> Outcome:
        if response.awaiting:
            self.state.data["form"] = {
                "intent": intent,
                "entities": {k: v for k, v in entities.items() if not k.endswith("_query")},
                "awaiting": response.awaiting,
                "at": self.now.isoformat(),
            }
        else:
            self.state.data.pop("form", None)
        if response.refusal:
            self.audit(intent, response.targets, "refused", response.refusal)
        if response.proposal is not None:
            return self.propose(intent, response)
        return self.outcome(response)

    def authorize(self, permission: Permission, intent: str) -> Outcome | None:
        """The one place where rights are checked before a handler runs."""
        if permission == Permission.ANYONE:
            return None
        structure = self.structure_id()
        role = self.speaker.role
        allowed_roles = (
            {Role.DIRECTOR}
            if permission == Permission.CHANGE_SCHOOL
            else {Role.DIRECTOR, Role.ERUN}
        )
        if role in allowed_roles and structure is not None:
            if not self.incoming.private_chat:
                return self.text(
                    "Pour agir sur l'annuaire de l'école, écrivez-moi en message privé : je "
                    "n'effectue ni ne confirme aucune modification dans un groupe."
                )
            return None
        entry = self.a.kb.entries.get(intent)
        howto = entry.howto if entry else None
        if role == Role.ERUN and permission == Permission.CHANGE_SCHOOL:
            lead = (
                "En tant qu'eRun, vous pouvez consulter l'état des écoles de votre "
                "circonscription ; les modifications de l'annuaire sont faites par la direction "
                "de l'école."
            )
        elif role == Role.DIRECTOR:
            lead = "Cette action n'est pas possible depuis votre compte."
        else:
            lead = (
                "Seule la direction de l'école peut faire cette action, depuis la console "
                "d'administration de l'ENT ou ici après avoir relié son compte. Voici comment "
                "faire :"
            )
        self.audit(intent, [], "refused", f"droits insuffisants ({role})")
        says = [Say(lead)]
        if howto and howto in self.a.kb.entries:
            turn = self.turn(howto, "", {})
            says.append(Say(turn.render(howto), turn.see_also(self.a.kb.entries[howto].related)))
        if role not in (Role.DIRECTOR, Role.ERUN):
            says.append(Say(LINK_HINT))
        return self.outcome(says)

    def which_school(self, intent: str) -> Outcome:
        """An eRun follows several schools: ask which one, with a button each."""
        choices = []
        for structure_id in self.speaker.structures[:8]:
            structure = self.a.store.directory.structure(structure_id)
            label = structure.name if structure else structure_id
            choices.append(Choice(label, {"intent": intent, "structure": structure_id}))
        return self.text("Pour quelle école de votre circonscription ?", choices)

    def out_of_scope(self, analysis: Analysis | None) -> Outcome:
        self.intent = OUT_OF_SCOPE
        nearest: list[str] = []
        if analysis is not None:
            nearest = [
                c.intent
                for c in analysis.ranking
                if self.a.kb.entries.get(c.intent) and self.a.kb.entries[c.intent].answer
            ][:3]
        if len(nearest) < 3:
            for default in (
                "educonnect.activate",
                "educonnect.forgot_credentials",
                "accounts.rentree",
            ):
                if default not in nearest and len(nearest) < 3:
                    nearest.append(default)
        choices = [Choice(self.a.kb.title(i), {"intent": i}) for i in nearest]
        return self.text(
            "Désolé, je ne sais pas répondre à cette question : je connais les questions de "
            "rentrée sur l'ENT ONE (EduConnect, comptes, données et partages, actions de la "
            "direction). Peut-être l'un de ces sujets ?\n\n"
            "Il vous reste des questions ? Contactez votre eRun de circonscription.",
            choices,
        )

    def did_you_mean(self, u: Understanding) -> Outcome:
        choices = [
            Choice(self.a.kb.title(c), {"intent": c, "entities": u.entities_internal})
            for c in u.choices
        ]
        return self.text("Vouliez-vous dire…", choices)

    # -- commands --------------------------------------------------------------------------
    def command(self, text: str) -> Outcome:
        head, _, rest = text[1:].partition(" ")
        name = head.split("@", 1)[0].lower()
        rest = rest.strip()
        if name == "start":
            return self.start(rest)
        if name == "connexion":
            return self.link(rest)
        if name == "deconnexion":
            return self.unlink()
        if name in {"annuler", "annule", "cancel"}:
            return self.cancel_all()
        intent = COMMAND_INTENTS.get(name)
        if intent is None:
            return self.text(
                f"Je ne connais pas la commande /{name[:30]}. Tapez /aide pour voir ce que je "
                "sais faire."
            )
        self.confidence = 1.0
        if self.a.kb.intents.get(intent) and self.a.kb.intents[intent].kind in ("action", "query"):
            structure = (
                self.structure_id() if self.speaker.role in (Role.DIRECTOR, Role.ERUN) else None
            )
            u = self.a.understander.entities_for(
                intent, rest, self.a.store.directory if structure else None, structure
            )
            self.entities = dict(u.public)
            return self.run_intent(intent, rest, dict(u.internal))
        return self.run_intent(intent, rest, {})

    def start(self, payload: str) -> Outcome:
        key = payload.strip().lower()
        intent = DEEP_LINK_ALIASES.get(key) or key.replace("-", "_").replace("_", ".", 1)
        if intent in self.a.kb.entries and self.a.kb.entries[intent].answer:
            self.confidence = 1.0
            return self.run_intent(intent, "", {})
        self.confidence = 1.0
        return self.run_intent("dialogue.greet", "", {})

    def link(self, code: str) -> Outcome:
        self.intent = "account.link"
        if not self.incoming.private_chat:
            return self.text(
                "Envoyez votre code de connexion en message privé, jamais dans un groupe."
            )
        if not code:
            return self.text(
                "Envoyez le code reçu de votre eRun ainsi : <code>/connexion CODE</code>."
            )
        try:
            login = self.a.store.accounts.redeem(self.incoming.speaker_key, code.strip(), self.now)
        except AccountError as error:  # its message is written for the user, in French
            return self.text(html.escape(str(error), quote=False))
        self.a.forget_speaker(self.incoming.speaker_key)
        self.speaker = self.a.speaker_for(self.incoming.speaker_key, login, fresh=True)
        name = self.speaker.display_name or login
        if self.speaker.role == Role.DIRECTOR:
            structure = self.a.store.directory.structure(self.structure_id())
            school = structure.name if structure else ""
            return self.text(
                f"Bienvenue {name} : votre compte est relié, directeur ou directrice de "
                f"<b>{_escape(school)}</b>. Dites par exemple « où en est l'école pour la "
                "rentrée ? » ou « bloque les parents ». Tapez /aide pour tout voir."
            )
        return self.text(f"Bienvenue {name} : votre compte est relié.")

    def unlink(self) -> Outcome:
        self.intent = "account.unlink"
        if self.a.store.accounts.unlink(self.incoming.speaker_key):
            self.state.data.pop("pending", None)
            self.state.data.pop("form", None)
            self.a.forget_speaker(self.incoming.speaker_key)
            self.speaker = Speaker(key=self.incoming.speaker_key)
            return self.text("Votre compte n'est plus relié à l'assistant. À bientôt !")
        return self.text("Aucun compte n'était relié à cette conversation.")

    def cancel_all(self) -> Outcome:
        self.intent = "dialogue.cancel"
        pending = self.state.data.pop("pending", None)
        form = self.state.data.pop("form", None)
        if pending:
            self.audit(
                pending["intent"], pending["targets"], "cancelled", "annulé par l'utilisateur"
            )
            return self.text("C'est annulé : rien n'a été modifié.")
        if form:
            return self.text("D'accord, j'abandonne cette demande.")
        return self.text("Il n'y avait rien en cours à annuler.")

    # -- forms -----------------------------------------------------------------------------
    def continue_form(self, form: dict[str, Any], text: str) -> Outcome | None:
        started = datetime.fromisoformat(form["at"])
        if self.now - started > FORM_LIFETIME:
            self.state.data.pop("form", None)
            return None
        if fold(text) in CANCEL_WORDS:
            self.state.data.pop("form", None)
            self.intent = "dialogue.cancel"
            return self.text("D'accord, j'abandonne cette demande. Rien n'a été modifié.")
        intent = form["intent"]
        slot = form["awaiting"]
        structure = self.structure_id()
        directory = self.a.store.directory if structure else None
        filled = self.a.understander.fill_slot(slot, text, directory, structure)
        if not filled:
            # Not a value for the slot: maybe another question altogether.
            u = self.a.understand(text, structure)
            if u.intent != OUT_OF_SCOPE and u.intent != intent and u.confidence >= 0.7:
                self.state.data.pop("form", None)
                return None
        entities = dict(form["entities"])
        entities.update(filled or {f"{slot}_query": text, f"{slot}_missing": True})
        self.confidence = 1.0
        return self.run_intent(intent, text, entities)

    # -- buttons ---------------------------------------------------------------------------
    def press(self, button_id: str) -> Outcome:
        stored = self.state.buttons.get(button_id)
        if stored is None:
            # The console presses by label: look among the last reply's buttons.
            for candidate in self.state.data.get("last_buttons", []):
                found = self.state.buttons.get(candidate)
                if found and found["label"].lower() == button_id.strip().lower():
                    stored = found
                    break
        if stored is None:
            self.intent = "button.unknown"
            if "." in button_id and button_id.split(".", 1)[0] != owner_tag(
                self.incoming.speaker_key
            ):
                return self.outcome(
                    [
                        Say(
                            "Ce bouton a été proposé à quelqu'un d'autre : seule la personne "
                            "qui a fait la demande peut y répondre."
                        )
                    ]
                )
            return self.outcome(
                [
                    Say(
                        "Ce bouton n'est plus valide (demande expirée ou déjà traitée). Reposez "
                        "votre question si besoin."
                    )
                ],
            )
        payload = stored["payload"]
        if "confirm" in payload:
            return self.confirm(payload["confirm"])
        if "cancel" in payload:
            return self.cancel_pending(payload["cancel"])
        if "slot" in payload:
            form = self.state.data.get("form")
            if not form:
                return self.text("Cette demande n'est plus en cours. Reposez-la si besoin.")
            entities = dict(form["entities"])
            entities[payload["slot"]] = payload["value"]
            entities.pop(f"{payload['slot']}_candidates", None)
            self.confidence = 1.0
            outcome = self.run_intent(form["intent"], "", entities)
            return outcome
        intent = payload.get("intent")
        if payload.get("structure") in self.speaker.structures:
            self.chosen_structure = payload["structure"]
        if intent:
            self.confidence = 1.0
            return self.run_intent(intent, "", dict(payload.get("entities") or {}))
        return self.text("Ce bouton n'est plus valide.")

    def propose(self, intent: str, response: Response) -> Outcome:
        proposal: Proposal = response.proposal  # type: ignore[assignment]
        pending_id = secrets.token_hex(4)
        self.state.data["pending"] = {
            "id": pending_id,
            "intent": intent,
            "args": proposal.args,
            "targets": proposal.targets,
            "structure": self.structure_id(),
            "at": self.now.isoformat(),
        }
        says = list(response.says)
        says.append(
            Say(
                proposal.summary + "\n\n<i>Je n'applique rien sans votre confirmation "
                "(valable 10 minutes).</i>",
                [
                    Choice(CONFIRM_LABEL, {"confirm": pending_id}),
                    Choice(CANCEL_LABEL, {"cancel": pending_id}),
                ],
            )
        )
        return self.outcome(says)

    def confirm(self, pending_id: str) -> Outcome:
        pending = self.state.data.get("pending")
        if not pending or pending["id"] != pending_id:
            self.intent = "confirmation.stale"
            return self.outcome(
                [
                    Say(
                        "Cette demande n'est plus en attente : elle a déjà été traitée, "
                        "annulée ou remplacée. Rien de plus n'a été modifié."
                    )
                ],
                edits=True,
            )
        # Pop first: a second press finds nothing, so the change runs at most once.
        self.state.data.pop("pending", None)
        self.a.store.conversations.put(self.incoming.speaker_key, self.state.data)
        intent = pending["intent"]
        self.intent = intent
        self.confidence = 1.0
        if self.now - datetime.fromisoformat(pending["at"]) > PENDING_LIFETIME:
            self.audit(intent, pending["targets"], "expired", "confirmation après 10 minutes")
            return self.outcome(
                [
                    Say(
                        "Cette demande a expiré (plus de 10 minutes) : rien n'a été modifié. "
                        "Redemandez-la si besoin."
                    )
                ],
                edits=True,
            )
        # Rights are checked again at execution: a link may have been revoked meanwhile.
        self.speaker = self.a.speaker_for(self.incoming.speaker_key, self.login, fresh=True)
        spec = registry.spec(intent, "action")
        if (
            spec is None
            or self.speaker.role != Role.DIRECTOR
            or pending["structure"] not in self.speaker.structures
            or not self.incoming.private_chat
        ):
            self.audit(intent, pending["targets"], "refused", "droits insuffisants à l'exécution")
            return self.outcome(
                [
                    Say(
                        "Vous n'avez plus les droits pour faire cette modification : rien n'a été "
                        "modifié."
                    )
                ],
                edits=True,
            )
        executor = registry.executor_for(intent)
        turn = self.turn(intent, "", {})
        turn.structure_id = pending["structure"]
        directory = self.a.store.directory
        try:
            with directory.transaction():
                response = executor(turn, pending["args"])  # type: ignore[misc]
        except Exception:
            log.exception("change %s failed and was rolled back", intent)
            self.audit(intent, pending["targets"], "failed", "erreur technique, annulé")
            return self.outcome(
                [
                    Say(
                        "La modification a échoué à cause d'un problème technique : rien n'a été "
                        "modifié. Réessayez plus tard ou contactez votre eRun."
                    )
                ],
                edits=True,
            )
        self.a.understander.forget_roster()
        if response.refusal:
            self.audit(intent, response.targets or pending["targets"], "refused", response.refusal)
        else:
            detail = response.says[0].text if response.says else ""
            self.audit(intent, response.targets or pending["targets"], "done", detail)
        return self.outcome(response, edits=True)

    def cancel_pending(self, pending_id: str) -> Outcome:
        pending = self.state.data.get("pending")
        self.intent = "confirmation.cancel"
        if not pending or pending["id"] != pending_id:
            return self.outcome([Say("Cette demande n'est plus en attente.")], edits=True)
        self.state.data.pop("pending", None)
        self.audit(pending["intent"], pending["targets"], "cancelled", "annulé par l'utilisateur")
        return self.outcome([Say("C'est annulé : rien n'a été modifié.")], edits=True)


def _escape(text: str) -> str:
    return html.escape(text, quote=False)
