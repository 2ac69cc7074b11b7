"""The lexicon's concepts, services and orders are looked for only in texts that hold one of
the letters their patterns open with: the same names found as a search of every pattern.
Folding drops accents through a translation table: the same text as a scan of each letter."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intents.nlu.normalize import Lexicon, NamedPatterns, fold, literal_openings
from tests.support import shared_kb_and_matcher


@pytest.mark.parametrize(
    ("pattern", "openings"),
    [
        (r"\bpourquoi\b", ("pourquoi",)),
        (r"\bgroupes?\b", ("groupe",)),  # the « s » may be absent
        (r"\becole ?directe\b", ("ecole",)),
        (r"\bdeblo[qc]\w*", ("deblo",)),
        (r"\bde (?<!merci de )(?<!avant de )bloqu(?:e|er)\b", ("de bloqu",)),
        (r"(?<!merci )\bde bloque", ("de bloque",)),
        (r"^supprime", ("supprime",)),
        (r"\b(lev|enlev|retir)\w* (le )?blocage", ("lev", "enlev", "retir")),
        (r"\b(?:ouvr|rouvr)\w*", ("ouvr", "rouvr")),
        # None: every text must then be searched.
        (r"\bi ?prof\b", None),  # one letter is not worth looking for
        (r"\b(ab|cd)?ef", None),  # the group may be absent
        (r"cree\w*|fabriqu\w*", None),  # an alternation of its own
        (r"\b\w+ment\b", None),
        (r"[a-z]+ment", None),
    ],
)
def test_the_letters_a_pattern_opens_with(pattern: str, openings: tuple[str, ...] | None) -> None:
    assert literal_openings(pattern) == openings
    if openings is not None:
        # Every match holds one of them: the property the search relies on.
        for text in ("pourquoi les groupes", "de bloque", "ecoledirecte", "enlever le blocage"):
            match = re.search(pattern, text)
            assert match is None or any(o in text for o in openings)


def _lexicon() -> Lexicon:
    _, matcher = shared_kb_and_matcher()
    return matcher.lexicon


def _every_search(patterns: NamedPatterns, text: str) -> list[str]:
    return [name for name, pattern, _ in patterns.entries if pattern.search(text)]


def test_the_knowledge_reads_the_same_concepts_services_and_orders() -> None:
    kb, matcher = shared_kb_and_matcher()
    lexicon = matcher.lexicon
    texts = [matcher.normalize(t) for e in kb.entries.values() for t in e.examples]
    texts += [matcher.normalize(t) for t in kb.out_of_scope_examples]
    # Long messages too: several phrasings said one after the other.
    texts += [" ".join(texts[i : i + 6]) for i in range(0, len(texts), 6)]
    found = 0
    for patterns in (lexicon.concepts, lexicon.services, lexicon.orders):
        for text in texts:
            names = patterns.found(text)
            assert names == _every_search(patterns, text), text
            found += len(names)
    assert found > 1000  # the texts do hold concepts, services and orders to find


def _opening_words() -> list[str]:
    return sorted(
        {
            word
            for patterns in (_lexicon().concepts, _lexicon().services)
            for _, _, openings in patterns.entries
            for opening in openings or ()
            for word in opening.split()
        }
    )


# Deferred: the knowledge is loaded when the test runs, not when pytest collects this file.
_WORDS = st.deferred(lambda: st.sampled_from(_opening_words()))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(
            _WORDS,
            st.text(alphabet="abcdeilmnoqrstu ", min_size=1, max_size=8),
        ),
        max_size=12,
    )
)
def test_any_text_reads_the_same_names_as_a_search_of_every_pattern(parts: list[str]) -> None:
    lexicon = _lexicon()
    # Glued or spaced: openings that straddle words, or sit inside one, are found alike.
    for text in (" ".join(parts), "".join(parts)):
        for patterns in (lexicon.concepts, lexicon.services, lexicon.orders):
            assert patterns.found(text) == _every_search(patterns, text)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=40))
def test_folding_drops_exactly_the_combining_marks(text: str) -> None:
    # Any text, accents composed or not, marks alone, scripts the knowledge never uses.
    decomposed = unicodedata.normalize("NFKD", text)
    marks_dropped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    assert fold(text) == fold(unicodedata.normalize("NFC", marks_dropped))
    assert fold("Élève à l'école, ça marche") == "eleve a l ecole ca marche"


@pytest.mark.parametrize(
    ("text", "addressed"),
    [
        ("tu bloques les parents", True),
        ("vous me detachez m petit", True),
        ("tu la mets dans la classe", True),
        ("est ce que vous supprimez le groupe chorale", True),
        # A condition, not a request: « si tu bloques, … », « quand vous bloquez… ».
        ("si tu bloques les parents ils voient quoi", False),
        ("quand vous bloquez les comptes", False),
        ("une fois que tu supprimes le groupe", False),
        # A noun made of the verb, or a verb no order uses.
        ("tu vois le rattachement", False),
        ("tu sais bloquer les parents", False),
        ("bloque les parents", False),
    ],
)
def test_a_task_said_to_the_assistant(text: str, addressed: bool) -> None:
    assert _lexicon().addressed(text) is addressed


@pytest.mark.parametrize(
    ("text", "verb"),
    [
        ("bloque les parents", "bloque"),
        ("antoine n est plus chez nous supprime le de la liste", "supprime"),
        ("les collegues n ont pas acces ajoute les tous au groupe", "ajoute"),
        ("m petit est parti detache le", "detache"),
        # « le » before a noun is an article, before the verb a pronoun: no order.
        ("il supprime le compte", None),
        ("je le supprime de la liste", None),
        ("le rattachement les concerne", None),
    ],
)
def test_where_an_order_stands(text: str, verb: str | None) -> None:
    found = _lexicon().imperative(text)
    assert (found.group(0).split()[-1] if found else None) == verb
