"""The reference every change to understanding is judged against (`eval --baseline`): an
off-the-shelf TF-IDF + logistic regression trained on the same knowledge/ phrasings.

Accent-folded word 1–2-grams and char_wb 2–5-grams, C=20, out of scope as a class, and a
message whose best probability is under 0.15 rejected — as described in issue 9.
"""

from __future__ import annotations

from typing import Any

from intents.kb import KnowledgeBase
from intents.nlu.matcher import OUT_OF_SCOPE
from intents.nlu.normalize import fold

FLOOR = 0.15


class Baseline:
    """Trained at construction (a few seconds); `predict` gives (intent, confidence)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union

        texts = [x for e in kb.entries.values() for x in e.examples]
        labels = [e.id for e in kb.entries.values() for _ in e.examples]
        texts += kb.out_of_scope_examples
        labels += [OUT_OF_SCOPE] * len(kb.out_of_scope_examples)
        self.model: Any = make_pipeline(
            make_union(
                TfidfVectorizer(preprocessor=fold, ngram_range=(1, 2), sublinear_tf=True),
                TfidfVectorizer(
                    preprocessor=fold, analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True
                ),
            ),
            LogisticRegression(C=20, max_iter=5000),
        )
        self.model.fit(texts, labels)

    def predict(self, text: str) -> tuple[str, float]:
        probabilities = self.model.predict_proba([text])[0]
        best = int(probabilities.argmax())
        confidence = float(probabilities[best])
        intent = str(self.model.classes_[best])
        return (OUT_OF_SCOPE if confidence < FLOOR else intent), confidence
