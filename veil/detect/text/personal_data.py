"""Does a line of recognised text hold personal data? Patterns with checksums, no model.

``match_personal_data(text, matcher)`` returns the name of the first pattern the line matches
(``email``, ``iban``, ``card``, ``phone``, a national ID format such as ``us_ssn``, or ``name``),
or ``None``. The name is all that leaves this module: callers report the pattern, never the text.

Checks that keep ordinary numbers out:

* ``iban``: country code, two check digits and 11-30 letters or digits, length as the country's
  IBAN has, and the ISO 13616 mod-97 check equal to 1.
* ``card``: 13-19 digits (spaces or dashes between groups) passing the Luhn check.
* ``phone``: 9-15 digits (7-15 after a leading ``+`` or ``00``) in one run of digits, spaces,
  dashes, slashes and brackets; a run that starts like a date (``15/01/2024``) is not a phone.
* national IDs (``ID_FORMATS``; a spec picks any subset): each with its own check where one
  exists (Dutch BSN 11-test, Spanish DNI letter, Polish PESEL weights, Swedish personnummer Luhn,
  French NIR key, US SSN reserved ranges).
* ``name``: any of a user-supplied list of names, as whole words, ignoring case and accents.

OCR reads ``O`` for ``0`` now and then; the matcher does not guess such fixes, so a misread
number counts as not personal data (stated in the README as a limit of ``only: pii``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "ID_FORMATS",
    "PATTERNS",
    "PersonalDataMatcher",
    "iban_valid",
    "luhn_valid",
    "match_personal_data",
]

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+\s?@\s?[A-Za-z0-9\-]+(?:\s?\.\s?[A-Za-z0-9\-]+)*\s?\.\s?[A-Za-z]{2,}")
_IBAN_START = re.compile(r"(?=([A-Z]{2})\d{2})")
_DIGIT_RUN = re.compile(r"(?:\+|\b00)?\(?\d[\d\s\-/()]*\d")
_DATE_START = re.compile(r"^\d{1,2}[/\-]\d{1,2}[/\-]\d{2,4}")

_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
    "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
    "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip
"""IBAN length by country (ISO 13616 registry)."""


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of digits."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616: known country, its length, and mod-97 of the rearranged number equal to 1."""
    iban = re.sub(r"\s", "", candidate).upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit() or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _digit_runs(text: str) -> list[str]:
    """Each run of digits with separators, as (raw) strings."""
    return [m.group(0).strip() for m in _DIGIT_RUN.finditer(text)]


def _only_digits(raw: str) -> str:
    return re.sub(r"\D", "", raw)


def _card(text: str) -> bool:
    for raw in re.finditer(r"\d[\d \-]{11,}\d", text):
        digits = _only_digits(raw.group(0))
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False


def _phone(text: str) -> bool:
    for raw in _digit_runs(text):
        if _DATE_START.match(raw):
            continue
        digits = _only_digits(raw)
        international = raw.startswith("+") or raw.startswith("00")
        low = 7 if international else 9
        if low <= len(digits) - (2 if raw.startswith("00") else 0) <= 15:
            return True
    return False


def _iban(text: str) -> bool:
    """Any IBAN in ``text``, with or without its spaces: OCR often drops the space between a label
    and the number (``IBANDE89...``), so every place where a country code and two check digits start
    is tried with that country's length."""
    compact = re.sub(r"\s", "", text.upper())
    for m in _IBAN_START.finditer(compact):
        length = _IBAN_LENGTHS.get(m.group(1))
        if length is not None and iban_valid(compact[m.start() : m.start() + length]):
            return True
    return False


# --- national IDs -------------------------------------------------------------------------------------


def _us_ssn(text: str) -> bool:
    for m in re.finditer(r"\b(\d{3})[- ](\d{2})[- ](\d{4})\b", text):
        area, group, serial = m.groups()
        if area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000":
            return True
    return False


_NINO = re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\s?(?:\d{2}\s?){3}[A-D]\b")
_NIR = re.compile(r"\b([12])\s?(\d{2})\s?(\d{2})\s?(\d{2}|2[AB])\s?(\d{3})\s?(\d{3})\s?(\d{2})\b")


def _uk_nino(text: str) -> bool:
    return _NINO.search(text.upper()) is not None


def _nl_bsn(text: str) -> bool:
    for m in re.finditer(r"\b\d{4}\.?\d{2}\.?\d{3}\b|\b\d{9}\b", text):
        d = _only_digits(m.group(0))
        total = sum(int(c) * w for c, w in zip(d[:8], range(9, 1, -1), strict=True)) - int(d[8])
        if total % 11 == 0 and total != 0:
            return True
    return False


def _es_dni(text: str) -> bool:
    for m in re.finditer(r"\b(\d{8})-?([A-Z])\b", text.upper()):
        if "TRWAGMYFPDXBNJZSQVHLCKE"[int(m.group(1)) % 23] == m.group(2):
            return True
    return False


def _pl_pesel(text: str) -> bool:
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    for m in re.finditer(r"\b\d{11}\b", text):
        d = m.group(0)
        check = (10 - sum(int(c) * w for c, w in zip(d[:10], weights, strict=True)) % 10) % 10
        if check == int(d[10]) and 1 <= int(d[2:4]) % 20 <= 12:
            return True
    return False


def _se_personnummer(text: str) -> bool:
    for m in re.finditer(r"\b(?:19|20)?(\d{6})[-+](\d{4})\b", text):
        digits = m.group(1) + m.group(2)
        if 1 <= int(digits[2:4]) <= 12 and luhn_valid(digits):
            return True
    return False


def _fr_nir(text: str) -> bool:
    for m in _NIR.finditer(text.upper()):
        sex, yy, mm, dept, commune, order, key = m.groups()
        dept_num = dept.replace("2A", "19").replace("2B", "18")
        number = int(sex + yy + mm + dept_num + commune + order)
        if 1 <= int(mm) <= 12 and 97 - number % 97 == int(key):
            return True
    return False


ID_FORMATS: dict[str, Callable[[str], bool]] = {
    "us_ssn": _us_ssn,
    "uk_nino": _uk_nino,
    "nl_bsn": _nl_bsn,
    "es_dni": _es_dni,
    "pl_pesel": _pl_pesel,
    "se_personnummer": _se_personnummer,
    "fr_nir": _fr_nir,
}
"""National ID formats by name; ``PersonalDataMatcher.id_formats`` picks which are checked."""

PATTERNS: tuple[str, ...] = ("email", "iban", "card", *ID_FORMATS, "phone", "name")
"""Every pattern name a match can report, in the order they are tried."""


def _fold(text: str) -> str:
    """Lower case without accents, whitespace collapsed: how names are compared."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split())


@dataclass(frozen=True)
class PersonalDataMatcher:
    """Which patterns count as personal data for one request."""

    id_formats: tuple[str, ...] = tuple(ID_FORMATS)
    names: tuple[str, ...] = ()
    _name_patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = [f for f in self.id_formats if f not in ID_FORMATS]
        if unknown:
            raise ValueError(f"unknown ID format {unknown[0]!r}; known: {', '.join(ID_FORMATS)}")
        # A name matches as whole words, or with its spaces gone (OCR often drops them: "AnnaSchmidt").
        patterns = tuple(
            re.compile(
                r"(?<!\w)(?:" + re.escape(_fold(n)) + "|" + re.escape(_fold(n).replace(" ", "")) + r")(?!\w)"
            )
            for n in self.names
            if _fold(n)
        )
        object.__setattr__(self, "_name_patterns", patterns)

    def match(self, text: str) -> str | None:
        """The first pattern ``text`` matches, or None. Never logs or keeps ``text``."""
        if _EMAIL.search(text):
            return "email"
        if _iban(text):
            return "iban"
        if _card(text):
            return "card"
        for name in self.id_formats:
            if ID_FORMATS[name](text):
                return name
        if _phone(text):
            return "phone"
        if self._name_patterns:
            folded = _fold(text)
            if any(p.search(folded) for p in self._name_patterns):
                return "name"
            joined = re.sub(r"(?<=[^\W\d_]) (?=[^\W\d_])", "", folded)
            if any(p.search(joined) for p in self._name_patterns):
                return "name"
        return None


def match_personal_data(text: str, matcher: PersonalDataMatcher | None = None) -> str | None:
    """``(matcher or PersonalDataMatcher()).match(text)``."""
    return (matcher or PersonalDataMatcher()).match(text)
