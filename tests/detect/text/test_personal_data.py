"""The personal-data matcher: real-looking numbers that pass their checksums count, the same numbers
with one digit changed do not, and ordinary lines (dates, prices, order numbers) never do."""

from __future__ import annotations

import pytest

from veil.detect.text.personal_data import (
    ID_FORMATS,
    PATTERNS,
    PersonalDataMatcher,
    iban_valid,
    luhn_valid,
    match_personal_data,
)
from veil.spec import IdFormat

# IBANs from the national banks' published examples (valid check digits).
VALID_IBANS = [
    "DE89 3704 0044 0532 0130 00",
    "GB29 NWBK 6016 1331 9268 19",
    "NL91 ABNA 0417 1643 00",
    "FR14 2004 1010 0505 0001 3M02 606",
    "BE68 5390 0754 7034",
]
# Test card numbers the card networks publish (Luhn-valid).
VALID_CARDS = ["4111 1111 1111 1111", "5555 5555 5555 4444", "3782 822463 10005", "6011-1111-1111-1117"]


@pytest.mark.parametrize("iban", VALID_IBANS)
def test_valid_ibans_pass_mod_97_and_one_changed_digit_fails(iban: str) -> None:
    assert iban_valid(iban)
    assert match_personal_data(f"IBAN {iban}") == "iban"
    digits = [i for i, ch in enumerate(iban) if ch.isdigit() and i > 4]
    k = digits[len(digits) // 2]
    broken = iban[:k] + str((int(iban[k]) + 1) % 10) + iban[k + 1 :]
    assert not iban_valid(broken)
    assert match_personal_data(f"IBAN {broken}") != "iban"


def test_an_iban_of_the_wrong_length_for_its_country_fails() -> None:
    assert not iban_valid("DE89 3704 0044 0532 0130 0")


@pytest.mark.parametrize("card", VALID_CARDS)
def test_card_numbers_pass_luhn_and_a_swapped_digit_fails(card: str) -> None:
    digits = card.replace(" ", "").replace("-", "")
    assert luhn_valid(digits)
    assert match_personal_data(f"Card {card}") == "card"
    broken = digits[:-1] + str((int(digits[-1]) + 3) % 10)
    assert not luhn_valid(broken)
    assert match_personal_data(f"Ref {broken[:4]} {broken[4:8]} {broken[8:12]} {broken[12:]}") not in (
        "card",
    )


@pytest.mark.parametrize(
    "line",
    ["anna.schmidt@example.com", "E-mail: j.de-vries+badge@mail.example.org", "contact jonas @ nordlicht.de"],
)
def test_email_addresses(line: str) -> None:
    assert match_personal_data(line) == "email"


@pytest.mark.parametrize(
    "line",
    ["Phone +49 30 1234567", "Tel. 0170 1234567", "(555) 123-4567", "+44 20 7946 0958", "0031 20 555 0123"],
)
def test_phone_numbers(line: str) -> None:
    assert match_personal_data(line) == "phone"


@pytest.mark.parametrize(
    "line",
    [
        "Date 15.01.2024 10:30",
        "Date 15/01/2024 10",
        "Total EUR 1,250.00",
        "Order No. 4711",
        "10115 Berlin",
        "Room 3.14",
        "Page 2 of 3",
        "Meeting schedule approved",
        "Invoice 2024-0042",
    ],
)
def test_ordinary_lines_are_not_personal_data(line: str) -> None:
    assert match_personal_data(line) is None


@pytest.mark.parametrize(
    ("fmt", "valid", "invalid"),
    [
        ("us_ssn", "SSN 123-45-6789", "SSN 666-45-6789"),
        ("uk_nino", "NI AB 12 34 56 C", "NI BG 12 34 56 C"),
        ("nl_bsn", "BSN 111222333", "BSN 111222334"),
        ("es_dni", "DNI 12345678Z", "DNI 12345678A"),
        ("pl_pesel", "PESEL 44051401359", "PESEL 44051401358"),
        ("se_personnummer", "811218-9876", "811218-9875"),
        ("fr_nir", "NIR 1 85 05 78 006 084 91", "NIR 1 85 05 78 006 084 92"),
    ],
)
def test_national_ids_pass_their_checks_and_fail_with_one_digit_changed(
    fmt: str, valid: str, invalid: str
) -> None:
    only = PersonalDataMatcher(id_formats=(fmt,))
    assert only.match(valid) == fmt
    assert only.match(invalid) != fmt
    none = PersonalDataMatcher(id_formats=())
    assert none.match(valid) != fmt, "a format left out of the list is not checked"


def test_names_match_whole_words_ignoring_case_and_accents() -> None:
    matcher = PersonalDataMatcher(names=("Zoë Müller", "Ahmed"))
    assert matcher.match("ZOE MULLER") == "name"
    assert matcher.match("ZoeMuller") == "name", "OCR drops the space between words"
    assert matcher.match("Visitor: ahmed") == "name"
    assert matcher.match("Ahmedabad office") is None
    assert PersonalDataMatcher().match("Ahmed") is None, "names count only when listed"


def test_unknown_id_formats_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown ID format"):
        PersonalDataMatcher(id_formats=("xx_id",))


def test_the_spec_knows_every_id_format_and_every_pattern_has_a_name() -> None:
    assert set(IdFormat.__args__) == set(ID_FORMATS)  # type: ignore[attr-defined]
    assert len(set(PATTERNS)) == len(PATTERNS)
