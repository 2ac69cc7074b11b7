"""The one command table: the core's command map, every channel's menus and the commands
accepted in groups all derive from it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.core.messages import Menu
from intents.domain import Role
from intents.handlers import registry
from intents.registry import Permission


class Builtin(StrEnum):
    """Commands the core answers itself, not through an intent."""

    START = "start"
    LINK = "connexion"
    UNLINK = "deconnexion"
    CANCEL = "annuler"
    PRIVACY = "privacy"
    FORGET = "oublier"
    REMINDERS = "rappels"
    TRIAGE = "triage"
    STATS = "stats"


@dataclass(frozen=True)
class Command:
    name: str
    description: str
    # Either an intent run through the registry (rights checked there) or a builtin.
    intent: str | None = None
    builtin: Builtin | None = None
    aliases: tuple[str, ...] = ()
    # Shown in the menus; hidden commands still work when typed.
    listed: bool = True
    # What a builtin requires (an intent's command takes its intent's permission).
    permission: Permission | None = None


COMMANDS: tuple[Command, ...] = (
    Command("start", "Démarrer : ce que je sais faire", builtin=Builtin.START),
    Command("aide", "Aide et exemples de questions", "dialogue.help", aliases=("help",)),
    Command("erun", "Contacter l'eRun de circonscription", "dialogue.human"),
    Command("connexion", "Relier votre compte ENT avec le code de l'eRun", builtin=Builtin.LINK),
    Command("deconnexion", "Délier votre compte ENT", builtin=Builtin.UNLINK),
    Command("annuler", "Annuler la demande en cours", builtin=Builtin.CANCEL, aliases=("cancel",)),
    Command(
        "privacy",
        "Vos données : ce qui est gardé, combien de temps",
        builtin=Builtin.PRIVACY,
        aliases=("confidentialite", "rgpd"),
    ),
    Command("oublier", "Effacer vos données gardées par l'assistant", builtin=Builtin.FORGET),
    # Directors only (checked in bot/core/reminders.py): not listed in every menu.
    Command(
        "rappels", "Rappel du lundi : la liste de rentrée", builtin=Builtin.REMINDERS, listed=False
    ),
    Command(
        "triage",
        "Questions transmises à l'eRun, regroupées",
        builtin=Builtin.TRIAGE,
        permission=Permission.HANDLE_TICKETS,
    ),
    Command(
        "stats",
        "Statistiques des questions (7 et 30 jours)",
        builtin=Builtin.STATS,
        permission=Permission.HANDLE_TICKETS,
    ),
    Command("bloquer", "Bloquer des comptes (ex. les parents)", "action.block"),
    Command("debloquer", "Débloquer des comptes", "action.unblock"),
    Command("rattacher", "Rattacher un enseignant à une classe", "action.attach_teacher"),
    Command("detacher", "Détacher un enseignant de l'école", "action.detach_teacher"),
    Command("supprimer_groupe", "Supprimer un groupe manuel", "action.delete_group"),
    Command("supprimer_compte", "Supprimer un compte manuel", "action.remove_manual_account"),
    Command("gar", "Rendre les enseignants responsables GAR", "action.gar_managers"),
    Command("checklist", "Où en est l'école pour la rentrée", "query.checklist"),
    Command("groupes", "Voir les groupes de l'école", "query.groups"),
    Command("sans_classe", "Enseignants sans classe", "query.teachers_without_class"),
    Command("comptes_manuels", "Comptes manuels de l'école", "query.manual_accounts"),
)

_BY_NAME = {name: c for c in COMMANDS for name in (c.name, *c.aliases)}

# Who may run what a command's intent requires; builtins and ANYONE intents are for all.
_MENUS_FOR = {
    Permission.ANYONE: {Menu.PUBLIC, Menu.DIRECTOR, Menu.ERUN},
    Permission.READ_SCHOOL: {Menu.DIRECTOR, Menu.ERUN},
    Permission.CHANGE_SCHOOL: {Menu.DIRECTOR},
    Permission.HANDLE_TICKETS: {Menu.ERUN},
}


def command_named(name: str) -> Command | None:
    """The command typed as /name (case-insensitive, without the @bot suffix)."""
    return _BY_NAME.get(name.split("@", 1)[0].lower())


def all_names() -> list[str]:
    """Every name a channel must route to the core, aliases included."""
    return list(_BY_NAME)


def permission_of(command: Command) -> Permission:
    if command.permission is not None:
        return command.permission
    if command.intent is None:
        return Permission.ANYONE
    spec = registry.spec(command.intent, command.intent.split(".", 1)[0])
    return spec.permission if spec is not None else Permission.ANYONE


def menu_commands(menu: Menu) -> list[Command]:
    """The commands listed in that menu, in table order."""
    return [c for c in COMMANDS if c.listed and menu in _MENUS_FOR[permission_of(c)]]


def menu_for(role: Role) -> Menu:
    return {Role.DIRECTOR: Menu.DIRECTOR, Role.ERUN: Menu.ERUN}.get(role, Menu.PUBLIC)
