"""Phone numbers, e-mail addresses and INE never reach a stored ticket; nothing else changes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.masking import EMAIL, INE, PHONE, mask_personal_data

PHONES = [
    "06 12 34 56 78",
    "06.12.34.56.78",
    "0612345678",
    "06-12-34-56-78",
    "07 98 76 54 32",
    "03 20 12 34 56",
    "09.87.65.43.21",
    "06 12.34-56 78",
    "06 . 12 . 34 . 56 . 78",
    "06 - 12 - 34 - 56 - 78",
    "06\u00a012\u00a034\u00a056\u00a078",
    "+33 6 12 34 56 78",
    "+336 12 34 56 78",
    "+33612345678",
    "+33 (0)6 12 34 56 78",
    "+33 06 12 34 56 78",
    "0033 6 12 34 56 78",
    "0033612345678",
    "+33 3 20 12 34 56",
    "+262 692 12 34 56",
    "+590 690 12 34 56",
]

EMAILS = [
    "jean.dupont@gmail.com",
    "claire-martin@ac-lille.fr",
    "parent+ecole@orange.fr",
    "marie_2015@laposte.net",
    "Sophie.Leroy@Hotmail.FR",
    "élodie.lefèvre@free.fr",
    "ce.0590123a@ac-lille.fr",
]

INES = [
    "1234567890F",
    "123456789FF",
    "123456789ab",
    "0612345678A",
    "2018A12345K",
    "070254832AB",
]

# Ordinary numbers and codes that a question about a school holds and that are not personal.
UNCHANGED = [
    "la rentrée 2023 est le 4 septembre",
    "on est 27 dans la classe de CE2",
    "école de Lille 59000, ou 59100 Roubaix",
    "le code UAI de l'école est 0590456B",
    "UAI 0590123A et 0620001X",
    "du 01/09/2023 au 05/07/2024",
    "le 01.09.2023 à 08h30",
    "de 2023 à 2024, 12 classes et 240 élèves",
    "page 32 exercice 4, question 12",
    "mon fils né le 12 03 2016",
    "compte 12345 bloqué depuis 3 jours",
    "n° 06 12 34",
    "123456789",
    "12345678901234",
    "1234567890",
    "le numéro 12345678901 de la facture",
    "INE pas encore attribué à l'élève",
    "écrivez à @AssistantRentreeBot sur Telegram",
    "contact@",
    "mail: pas d'adresse",
    "CE1-CE2, CM1/CM2, 2 × 12",
    "ABCDEFGHIJK",
    "12345678 9AB",
]


@pytest.mark.parametrize("phone", PHONES)
def test_a_phone_number_in_any_common_writing_is_masked(phone: str) -> None:
    """Each common French writing of a number becomes the placeholder, words kept."""
    masked = mask_personal_data(f"rappelez-moi au {phone} svp")
    assert masked == f"rappelez-moi au {PHONE} svp"


@pytest.mark.parametrize("phone", ["0612345678", "06 12 34 56 78", "+33612345678"])
def test_a_phone_number_glued_to_words_or_punctuation_is_masked(phone: str) -> None:
    """Punctuation, brackets and line ends around the number do not hide it."""
    assert mask_personal_data(f"tel:{phone}.") == f"tel:{PHONE}."
    assert mask_personal_data(f"({phone})") == f"({PHONE})"
    assert mask_personal_data(f"{phone}\nmerci") == f"{PHONE}\nmerci"
    assert mask_personal_data(phone) == PHONE


@pytest.mark.parametrize("email", EMAILS)
def test_an_email_address_is_masked(email: str) -> None:
    """The whole address goes, not only its digits; the final full stop stays."""
    masked = mask_personal_data(f"mon mail c'est {email}.")
    assert masked == f"mon mail c'est {EMAIL}."


@pytest.mark.parametrize("ine", INES)
def test_an_ine_is_masked(ine: str) -> None:
    """The three INE formats are masked, in upper or lower case."""
    assert mask_personal_data(f"l'INE de ma fille est {ine} !") == f"l'INE de ma fille est {INE} !"


@pytest.mark.parametrize("text", UNCHANGED)
def test_ordinary_numbers_school_codes_and_words_are_kept(text: str) -> None:
    """Years, sizes, postcodes, dates, UAI codes and mentions are not personal data."""
    assert mask_personal_data(text) == text


def test_several_kinds_in_one_message_are_all_masked() -> None:
    """A message holding a phone, an address and an INE keeps only its words."""
    text = (
        "Bonjour, je suis la maman de Léa (INE 123456789FF), joignable au 06 12 34 56 78 "
        "ou à lea.maman@gmail.com, école 0590123A."
    )
    assert mask_personal_data(text) == (
        f"Bonjour, je suis la maman de Léa (INE {INE}), joignable au {PHONE} "
        f"ou à {EMAIL}, école 0590123A."
    )


def test_digits_of_an_address_are_not_read_as_a_phone() -> None:
    """An address made of a phone number is one address, masked once."""
    assert mask_personal_data("0612345678@sfr.fr") == EMAIL


# An independent, simpler reading of a French phone number: the property below must hold for it
# too, not only for the module's own pattern.
_ANY_PHONE = re.compile(r"(?<!\d)(?:(?:\+|00)\s?33\s?(?:\(0\))?\s?0?|0)[1-9](?:[\s.\-]*\d{2}){4}")

_PHONE_TEXT = st.builds(
    lambda first, pairs, seps: (
        "0"
        + str(first)
        + "".join(sep + f"{pair:02d}" for sep, pair in zip(seps, pairs, strict=True))
    ),
    st.integers(1, 9),
    st.lists(st.integers(0, 99), min_size=4, max_size=4),
    st.lists(st.sampled_from(["", " ", ".", "-", " - "]), min_size=4, max_size=4),
)
_PIECES = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="0123456789 .-+@()abcAB", max_size=14),
    _PHONE_TEXT,
    st.sampled_from(PHONES + EMAILS + INES + ["\n", " ", "@", ".", "0", "33", "+"]),
)
_TEXTS = st.lists(_PIECES, max_size=8).map("".join)


@settings(max_examples=400, deadline=None)
@given(_TEXTS)
def test_masking_twice_changes_nothing_more(text: str) -> None:
    """Masking is idempotent, whatever the text."""
    once = mask_personal_data(text)
    assert mask_personal_data(once) == once


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(st.text(alphabet=" abcdéèà,;:!?'", max_size=10), _PHONE_TEXT), max_size=6
    ).map(" ".join)
)
def test_no_phone_number_survives_masking(text: str) -> None:
    """Phones written among words leave no digit run that reads as a phone."""
    masked = mask_personal_data(text)
    assert not _ANY_PHONE.search(masked), masked


_WORDS = st.sampled_from(
    [
        "bonjour",
        "école",
        "classe",
        "CE2",
        "élèves",
        "rentrée",
        "le",
        "à",
        "Lille",
        "maîtresse",
        "ENT",
        "ONE",
        "EduConnect",
        "mot de passe",
        "?",
        ",",
        "!",
        "svp",
    ]
)
_ORDINARY_NUMBERS = st.one_of(
    st.integers(1900, 2099).map(str),
    st.integers(1, 40).map(str),
    st.sampled_from(["59000", "59100", "62000", "80000", "02000", "75015"]),
    st.builds(
        lambda dep, n, key: f"0{dep:02d}{n:04d}{key}",
        st.integers(1, 95),
        st.integers(0, 9999),
        st.sampled_from("ABCDEFGHJKLMNPRSTUVWXYZ"),
    ),
    st.builds(
        lambda d, m, y: f"{d:02d}/{m:02d}/{y}",
        st.integers(1, 31),
        st.integers(1, 12),
        st.integers(2015, 2030),
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_WORDS, _ORDINARY_NUMBERS), max_size=12).map(" ".join))
def test_text_without_personal_data_is_unchanged(text: str) -> None:
    """Words, years, sizes, postcodes, dates and school codes are kept as they are."""
    assert mask_personal_data(text) == text
