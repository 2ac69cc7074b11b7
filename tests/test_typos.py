"""The typo index finds the word a scan of the whole vocabulary would find, only faster."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from intents.nlu.typos import TypoIndex, typo_limit
from tests.support import shared_kb_and_matcher

LETTERS = "abcdeilmnorstuz"
WORDS = sorted({"bloquer", "debloquer", "parents", "parent", "classe", "compte", "comptes"})


def scanned(word: str, vocabulary: list[str]) -> str | None:
    """The reference: every known word compared, ties to the first (the code it replaced)."""
    found = process.extractOne(
        word, vocabulary, scorer=Levenshtein.distance, score_cutoff=typo_limit(len(word))
    )
    return found[0] if found else None


@st.composite
def vocabulary_and_typed_word(draw: st.DrawFn) -> tuple[list[str], str]:
    """Known words, and a word typed from one of them with up to three slips."""
    known = draw(st.lists(st.text(LETTERS, min_size=4, max_size=12), min_size=1, max_size=40))
    word = draw(st.sampled_from(known))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(word)))
        slip = draw(st.sampled_from(["insert", "delete", "replace"]))
        letter = draw(st.sampled_from(LETTERS))
        if slip == "insert":
            word = word[:at] + letter + word[at:]
        elif slip == "delete":
            word = word[:at] + word[at + 1 :]
        else:
            word = word[:at] + letter + word[at + 1 :]
    return sorted(set(known) - {word}), word


@settings(max_examples=500, deadline=None)
@given(vocabulary_and_typed_word())
def test_the_index_answers_like_a_scan_of_every_word(case: tuple[list[str], str]) -> None:
    words, word = case
    if len(word) >= 5:
        assert TypoIndex.of(words).closest(word) == scanned(word, words)


def test_one_or_two_edits_by_length_and_no_more() -> None:
    index = TypoIndex.of(WORDS)
    assert index.closest("bloquar") == "bloquer"  # 1 edit, 7 letters
    assert index.closest("bloqeur") is None  # 2 edits, 7 letters: too far
    assert index.closest("debloqeur") == "debloquer"  # 2 edits, 9 letters
    assert index.closest("parentz") == "parent"  # the first of two at 1 edit
    assert index.closest("xyzxyz") is None


def test_the_matcher_corrects_like_a_scan_on_mistyped_knowledge_words() -> None:
    _, matcher = shared_kb_and_matcher()
    known = sorted(w for w in matcher.vocabulary if len(w) >= 4)
    typed = [w[:2] + "z" + w[3:] for w in known[::7] if len(w) >= 6]
    typed += [w[:-1] for w in known[::5] if len(w) >= 6]
    typed += [w[0] + "z" + w[2:-2] + "z" + w[-1] for w in known[::3] if len(w) >= 9]
    typed = [w for w in typed if w not in matcher.vocabulary]
    assert len(typed) > 300
    for word in typed:
        assert matcher.correct(word) == (scanned(word, known) or word), word
