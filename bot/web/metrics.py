"""The figures /metrics serves (Prometheus text format), one registry per web app.

Each instance counts only what it handled; Prometheus scrapes every instance and sums. The
registry is the app's own, not prometheus_client's global one: two apps in one process (tests,
the bench) do not add up, and nothing else registered in the process leaks into the page.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from bot.core.messages import ActionOutcome, Incoming, Outcome
from intents.nlu.analysis import OUT_OF_SCOPE

# The core answers in milliseconds; a slow database or a long form can take seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class UpdateKind(StrEnum):
    """What a handled update carried."""

    TEXT = "text"
    PRESS = "press"
    OTHER = "other"


class Rejection(StrEnum):
    """Why the webhook refused a request."""

    SECRET = "secret"
    BAD_BODY = "bad_body"
    TOO_LARGE = "too_large"


def kind_of(incoming: Incoming) -> UpdateKind:
    """A button press, a text, or anything else (photo, edited message…)."""
    if incoming.press is not None:
        return UpdateKind.PRESS
    if incoming.unsupported is None and incoming.text is not None:
        return UpdateKind.TEXT
    return UpdateKind.OTHER


class Metrics:
    """The counters and the latency histogram of one instance, and their page."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.updates = Counter(
            "assistant_updates", "Updates handled by the core, by kind", ["kind"], registry=reg
        )
        self.intents = Counter(
            "assistant_intents", "Answers given, by intent recognised", ["intent"], registry=reg
        )
        self.out_of_scope = Counter(
            "assistant_out_of_scope_answers",
            "Answers saying the question is outside what the assistant knows",
            registry=reg,
        )
        self.actions = Counter(
            "assistant_action_outcomes",
            "Pending changes ended, by outcome (as in the audit log)",
            ["outcome"],
            registry=reg,
        )
        self.latency = Histogram(
            "assistant_handling_seconds",
            "Time the core took to answer one update (worker thread queue included)",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.rejected = Counter(
            "assistant_webhook_rejected_requests",
            "Webhook requests refused, by reason",
            ["reason"],
            registry=reg,
        )
        # Every label shown from the start at 0: a rate over a missing series is no rate.
        for kind in UpdateKind:
            self.updates.labels(kind=kind.value)
        for action in ActionOutcome:
            self.actions.labels(outcome=action.value)
        for reason in Rejection:
            self.rejected.labels(reason=reason.value)

    def observe(self, incoming: Incoming, outcome: Outcome, seconds: float) -> None:
        """Count one core call (the Telegram adapter's observer)."""
        self.updates.labels(kind=kind_of(incoming).value).inc()
        if outcome.intent is not None:
            self.intents.labels(intent=outcome.intent).inc()
        if outcome.intent == OUT_OF_SCOPE:
            self.out_of_scope.inc()
        if outcome.action is not None:
            self.actions.labels(outcome=outcome.action.value).inc()
        self.latency.observe(max(0.0, seconds))

    def reject(self, reason: Rejection) -> None:
        """Count one refused webhook request."""
        self.rejected.labels(reason=reason.value).inc()

    def page(self) -> tuple[bytes, str]:
        """The Prometheus text page and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
