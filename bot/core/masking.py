"""Personal data masked out of a question before it is stored in a ticket."""

from __future__ import annotations

import re

PHONE = "[téléphone]"
EMAIL = "[e-mail]"
INE = "[INE]"

# One optional separator between two groups of digits: a space (also the no-break spaces a
# phone keyboard inserts), a dot or a dash, or a dash or dot with spaces around it.
_SEP = r"(?:[ \t\u00a0\u202f]?[.\-]?[ \t\u00a0\u202f]?)"
# French numbers are written as pairs after the first digit: 06 12 34 56 78, 06.12.34.56.78,
# 0612345678. Pairs (not "any digit anywhere") keep dates and lists of numbers apart.
_PAIRS = rf"(?:{_SEP}\d{{2}}){{4}}"
# Metropolitan France (+33) and the overseas codes (Réunion/Mayotte, Guadeloupe, Guyane,
# Martinique, Saint-Pierre, Wallis, Nouvelle-Calédonie, Polynésie), written +33 or 0033,
# with the trunk 0 kept by mistake or in brackets: +33 6 12…, +33 (0)6 12…, 0033 06 12….
_COUNTRY = r"(?:\+|00)[ \t\u00a0]?(?:33|262|269|508|590|594|596|681|687|689)"
# No digit may touch the number on either side: 12 digits in a row are not a phone. A "+"
# starts a number whatever comes before it.
PHONE_PATTERN = re.compile(
    rf"(?:{_COUNTRY}{_SEP}(?:\(0\)|0)?{_SEP}[1-9]|(?<!\d)0[1-9]){_PAIRS}(?!\d)"
)

# The local part starts with a letter or digit so that a dot left next to a placeholder
# (« [e-mail].@x.fr ») is never read as a new address: masking twice changes nothing.
EMAIL_PATTERN = re.compile(r"(?<![\w.+\-])\w[\w.+\-]*@[\w\-]+(?:\.[\w\-]+)+")

# The INE (identifiant national élève) has 11 characters: 10 digits and a key letter (INE
# attributed by the Base élèves académique, before 2018), 9 digits and 2 letters (RNIE, since
# the 2018 school year), or 4 digits, the letter A, 5 digits and a letter (apprentices).
# Parents type the letters in lower case too. A UAI (0590456B: 7 digits and a letter) is not
# matched and not masked: it identifies a school, which is public, not a person. Years,
# class sizes and postcodes (59000) have no letter and are never 11 characters long.
INE_PATTERN = re.compile(
    r"(?<!\w)(?:\d{10}[a-zA-Z]|\d{9}[a-zA-Z]{2}|\d{4}[aA]\d{5}[a-zA-Z])(?!\w)"
)


def mask_personal_data(text: str) -> str:
    """The text with phone numbers, e-mail addresses and INE replaced by placeholders."""
    # Addresses first: their local part may hold digits that look like a phone or an INE.
    # INE before phones: a 10-digit INE starting with 0 would otherwise lose only its digits.
    while True:
        masked = PHONE_PATTERN.sub(PHONE, INE_PATTERN.sub(INE, EMAIL_PATTERN.sub(EMAIL, text)))
        if masked == text:
            return masked
        # A placeholder can free a neighbour (an INE glued to a phone number is bounded only
        # once the phone is gone): mask again until nothing changes, so masking is idempotent.
        # Each round removes digits or "@", so this ends.
        text = masked
