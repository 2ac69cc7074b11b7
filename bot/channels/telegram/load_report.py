"""What `bench load` measured and checked: lost updates, updates handled twice, changes
executed twice, apologies, tracebacks; and the report printed, in French."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bot.channels.telegram.fake_bot_api import Call
from bot.channels.telegram.load_users import DONE, Generator, failed, is_apology


@dataclass
class LoadResult:
    """What one run measured and checked."""

    users: int
    instances: int
    faults: bool
    # Users arriving per second, and at most that many talking at once.
    arrivals: float = 0.0
    active: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    sent: int = 0
    lost: int = 0
    # Updates handled twice: a press answered twice, a message's answer given twice.
    duplicates: int = 0
    confirmations: int = 0
    done_entries: int = 0
    done_replies: int = 0
    double_executions: int = 0
    apologies: int = 0
    tracebacks_to_users: int = 0
    killed_connections: int = 0
    restarts: int = 0
    restart_seconds: float = 0.0
    server_tracebacks: int = 0
    redeliveries: int = 0
    uncertain_deliveries: int = 0
    # CPU seconds over the run: the generator (with the fake Bot API), each instance.
    generator_cpu: float = 0.0
    instances_cpu: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Updates answered per second."""
        return self.sent / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        """The latency under which `share` of the steps were answered."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0

    @property
    def clean(self) -> bool:
        """Zero lost, zero double, zero duplicate, no traceback shown to anyone."""
        return not (
            self.lost or self.duplicates or self.double_executions or self.tracebacks_to_users
        )


def count(generator: Generator, result: LoadResult) -> None:
    """Lost and duplicate updates, update by update (load_users says how answers are matched);
    apologies, tracebacks and « C'est fait » chat by chat."""
    tally, replies = generator.tally, generator.replies
    result.sent = len(tally.sent)
    result.latencies = tally.latencies
    result.confirmations = tally.confirmations
    result.double_executions = tally.double_executions
    result.redeliveries = tally.redeliveries
    result.uncertain_deliveries = tally.uncertain
    for one in tally.sent:
        kind, key = one.key
        if kind == "press":
            answered = replies.queries[key]
        else:
            # Handled twice, a message gets its whole answer twice: its first message again.
            shown = [_said(call) for call in replies.window(one) if not is_apology(call)]
            answered = shown.count(shown[0]) if shown else 0
        result.duplicates += max(0, answered - 1)
        result.lost += not answered and not one.apologised
    for calls in replies.by_chat.values():
        for call in calls:
            said = str(call.params.get("text", ""))
            result.apologies += is_apology(call)
            result.tracebacks_to_users += "Traceback" in said or "Error" in said
            result.done_replies += DONE in said and not failed(call)


def _said(call: Call) -> tuple[str, str]:
    """What a message showed: its text and buttons."""
    return str(call.params.get("text", "")), str(call.params.get("reply_markup"))


def format_load(result: LoadResult) -> str:
    """The report printed by `bench load`, in French."""
    ms = 1000
    mean = statistics.fmean(result.latencies) * ms if result.latencies else float("nan")
    cpu = ", ".join(f"{seconds:.0f} s" for seconds in result.instances_cpu)
    lines = [
        f"bench load : {result.instances} instances webhook, une base PostgreSQL, "
        f"{result.users} utilisateurs simulés" + (" — AVEC PANNES" if result.faults else ""),
        f"  arrivées : {result.arrivals:g} utilisateurs par seconde, au plus {result.active} "
        "en conversation à la fois",
        f"  {result.sent} mises à jour en {result.seconds:.1f} s : {result.rate:.0f} par seconde",
        f"  latence (envoi → première réponse) : p50 {result.percentile(0.5) * ms:.0f} ms, "
        f"p99 {result.percentile(0.99) * ms:.0f} ms, moyenne {mean:.0f} ms",
        f"  perdues : {result.lost}, traitées deux fois (même update_id) : {result.duplicates}, "
        f"exécutions en double : {result.double_executions}",
        f"  confirmations pressées : {result.confirmations}, entrées « done » : "
        f"{result.done_entries}, réponses « C'est fait » : {result.done_replies}",
        f"  « réessayez dans un instant » : {result.apologies}, traces montrées : "
        f"{result.tracebacks_to_users}",
        f"  livraisons refaites : {result.redeliveries} (dont {result.uncertain_deliveries} "
        "sans réponse, peut-être reçues)",
        f"  CPU : générateur et faux Bot API {result.generator_cpu:.0f} s, instances {cpu}",
    ]
    if result.faults:
        lines.append(
            f"  pannes : {result.killed_connections} connexions tuées "
            f"(pg_terminate_backend), {result.restarts} redémarrage(s) d'instance "
            f"(de nouveau à l'écoute en {result.restart_seconds:.1f} s)"
        )
    lines.append(f"  traces dans les journaux des instances : {result.server_tracebacks}")
    lines.append("  verdict : " + ("OK" if result.clean else "ÉCHEC"))
    return "\n".join(lines)
