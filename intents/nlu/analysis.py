"""What the matcher reads in a message: the ranking of the intents and the cues."""

from __future__ import annotations

from dataclasses import dataclass, field

OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True)
class Candidate:
    intent: str
    confidence: float


@dataclass(frozen=True)
class Cues:
    """How a message asks: how to (« comment… »), an order, one asked in so many words
    (« tu peux… », « merci de… »), one opening on an infinitive (« supprimer le groupe… »)."""

    howto: bool = False
    order: bool = False
    # Of the orders, one asked of the assistant in so many words (« tu peux… », « merci
    # de… »), not just a verb opening the message (« supprimer un compte ? »).
    asked_to_act: bool = False
    # The order opens on an infinitive (« supprimer le groupe… »), not an imperative.
    infinitive: bool = False


@dataclass
class Analysis:
    """What the matcher read in a message and how it ranks the intents."""

    text: str
    ranking: list[Candidate] = field(default_factory=list)
    out_of_scope_score: float = 0.0
    # Similarity of the nearest out-of-scope phrasing, and of the nearest in-scope one.
    nearest_out: float = 0.0
    nearest_in: float = 0.0
    # The intent of that nearest in-scope phrasing.
    nearest_intent: str = ""
    anchored: bool = False
    # How it asks; a follow-up's are read in its own words, not its topic's.
    cues: Cues = Cues()
    concepts: frozenset[str] = frozenset()
    # Services named that the document does not cover (lexicon `uncovered_services`).
    services: frozenset[str] = frozenset()
    # Orders given that the document does not cover (lexicon `uncovered_orders`: creating).
    orders: frozenset[str] = frozenset()
    # Words of the domain the message uses (lexicon `anchors`: educonnect, onde…).
    anchors: frozenset[str] = frozenset()
    # Concepts of the verb a request asks for (« tu peux bloquer… » → bloquer): what is
    # asked, whatever a later clause says will follow (« …, on rouvrira en septembre »).
    requested: frozenset[str] = frozenset()

    @property
    def is_question(self) -> bool:
        """Written as a question (« ? » at the end), whatever its words."""
        return self.text.rstrip().endswith("?")

    @property
    def best(self) -> Candidate:
        return self.ranking[0] if self.ranking else Candidate(OUT_OF_SCOPE, 0.0)
