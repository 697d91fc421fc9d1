"""Every spelling of an identifier normalises to one value, or is refused with a clear message."""

import pytest

from app.identity.normalize import (
    MAX_DISCOUNT_CARD_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_EXTERNAL_ID_LENGTH,
    MAX_PHONE_INPUT_LENGTH,
    InvalidIdentifier,
    normalize_discount_card,
    normalize_email,
    normalize_external_id,
    normalize_phone,
)

JOHN = "john.doe@example.com"
BERLIN = "+49301234567"
SAN_FRANCISCO = "+14155552671"

# A valid address of exactly MAX_EMAIL_LENGTH characters: 64 + "@" + 189.
LONGEST_EMAIL = "a" * 64 + "@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 57 + ".com"


def assert_one_line_message(error: InvalidIdentifier, prefix: str) -> None:
    message = str(error)
    assert message.startswith(prefix)
    assert "\n" not in message


class TestEmail:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            (" John.Doe@Example.COM ", JOHN),
            ("john.doe@example.com", JOHN),
            ("JOHN.DOE@EXAMPLE.COM\t", JOHN),
            ("\njohn.doe@example.com\r\n", JOHN),
            ("John.Doe@EXAMPLE.com", JOHN),
            ("\u00a0john.doe@example.com", JOHN),
            # An ideographic full stop is a dot in IDNA.
            ("john.doe@example\u3002com", JOHN),
            ("John+Tag@Example.com", "john+tag@example.com"),
            # The domain keeps its Unicode form, however it was written.
            ("User@BÜCHER.de", "user@bücher.de"),
            ("user@xn--bcher-kva.de", "user@bücher.de"),
            ("USER@bücher.DE", "user@bücher.de"),
            # Internationalised local parts: NFC first, then lower-cased.
            ("ÄÖ@example.com", "äö@example.com"),
            ("A\u0308@example.com", "ä@example.com"),
            (LONGEST_EMAIL, LONGEST_EMAIL),
        ],
    )
    def test_spellings_normalise_to_one_value(self, raw: str, expected: str) -> None:
        assert normalize_email(raw) == expected

    @pytest.mark.parametrize(
        "raw",
        [
            "",
            "   ",
            "a@b",
            "no-at-sign",
            "two@@at.com",
            "a@b..com",
            "@example.com",
            "john@",
            "john.@example.com",
            "john doe@example.com",
            "John <john@x.com>",
            '"john doe"@example.com',
            "john@[127.0.0.1]",
            "john@localhost",
            "john@example.test",
            "john\u200b@example.com",
            "john\x00@example.com",
            "jo\ud800hn@example.com",
            "a" + LONGEST_EMAIL,
        ],
    )
    def test_non_addresses_are_refused(self, raw: str) -> None:
        with pytest.raises(InvalidIdentifier) as caught:
            normalize_email(raw)
        assert_one_line_message(caught.value, "not a valid email address: ")

    def test_reason_comes_from_the_validator(self) -> None:
        with pytest.raises(InvalidIdentifier, match="It should have a period"):
            normalize_email("a@b")

    def test_length_is_checked_before_validation(self) -> None:
        with pytest.raises(InvalidIdentifier, match=f"longer than {MAX_EMAIL_LENGTH} characters"):
            normalize_email("x" * 10_000 + "@example.com")

    @pytest.mark.parametrize(
        "raw", [" John.Doe@Example.COM ", "User@BÜCHER.de", "A\u0308@example.com"]
    )
    def test_normalised_value_is_stable(self, raw: str) -> None:
        once = normalize_email(raw)
        assert normalize_email(once) == once


class TestPhone:
    @pytest.mark.parametrize(
        ("raw", "region", "expected"),
        [
            ("+49 30 1234567", "DE", BERLIN),
            ("030 1234567", "DE", BERLIN),
            ("(030) 123-4567", "DE", BERLIN),
            ("030/1234567", "DE", BERLIN),
            ("0049301234567", "DE", BERLIN),
            ("0049 30 1234567", "DE", BERLIN),
            ("+49-30-1234567", "DE", BERLIN),
            ("+49 (0) 30 1234567", "DE", BERLIN),
            ("+49.30.1234567", "DE", BERLIN),
            ("  +49 30 1234567\t", "DE", BERLIN),
            ("+49\u00a030\u00a01234567", "DE", BERLIN),
            ("\uff10\uff13\uff10 \uff11\uff12\uff13\uff14\uff15\uff16\uff17", "DE", BERLIN),
            ("tel:+49-30-1234567", "DE", BERLIN),
            ("TEL:+49 30 1234567", "DE", BERLIN),
            # The default region does not matter once the country code is written...
            ("+49 30 1234567", "US", BERLIN),
            # ...and it decides which international prefix is understood.
            ("011 49 30 1234567", "US", BERLIN),
            ("+1 (415) 555-2671", "DE", SAN_FRANCISCO),
            ("tel:+1-415-555-2671", "DE", SAN_FRANCISCO),
            ("001 415 555 2671", "DE", SAN_FRANCISCO),
            ("(415) 555-2671", "US", SAN_FRANCISCO),
            ("415.555.2671", "US", SAN_FRANCISCO),
            ("1-415-555-2671", "US", SAN_FRANCISCO),
            ("4155552671", "US", SAN_FRANCISCO),
        ],
    )
    def test_spellings_normalise_to_e164(self, raw: str, region: str, expected: str) -> None:
        assert normalize_phone(raw, default_region=region) == expected

    @pytest.mark.parametrize(
        ("raw", "region"),
        [
            ("", "DE"),
            ("   ", "DE"),
            ("12", "DE"),
            ("12", "US"),
            ("abc", "DE"),
            ("+", "DE"),
            ("+999 1234", "DE"),
            ("+1 415 555 267", "US"),
            ("+4930123456789012345", "DE"),
            # A local-only number has no E.164 form without its area code.
            ("555-2671", "US"),
            # "00" is not the international prefix in the US.
            ("0049 30 1234567", "US"),
            # Letters: vanity numbers and written-out extensions are refused.
            ("1-800-FLOWERS", "US"),
            ("+1 415 555 2671 ext. 12", "US"),
            ("tel:+1-415-555-2671;ext=12", "US"),
            ("tel:+49-30-1234567;phone-context=example.com", "DE"),
            ("+4930123456\u0431", "DE"),
            # Extensions without letters are refused too: E.164 cannot carry them.
            ("415-555-2671 #12", "US"),
            ("+1 415 555 2671;12", "US"),
            ("+49 30 1234567\x00", "DE"),
            ("+49 30\u200b1234567", "DE"),
            ("1" * (MAX_PHONE_INPUT_LENGTH + 1), "DE"),
        ],
    )
    def test_non_numbers_are_refused(self, raw: str, region: str) -> None:
        with pytest.raises(InvalidIdentifier) as caught:
            normalize_phone(raw, default_region=region)
        assert_one_line_message(caught.value, "not a valid phone number: ")

    @pytest.mark.parametrize(
        ("raw", "region", "reason"),
        [
            ("1-800-FLOWERS", "US", "letters are not allowed"),
            ("415-555-2671 #12", "US", "extensions are not supported"),
            ("555-2671", "US", "a local number"),
            ("+999 1234", "DE", "unknown country calling code"),
            ("+1 415 555 267", "US", "too short"),
            ("   ", "DE", "it is empty"),
        ],
    )
    def test_reason_is_named(self, raw: str, region: str, reason: str) -> None:
        with pytest.raises(InvalidIdentifier, match=reason):
            normalize_phone(raw, default_region=region)

    @pytest.mark.parametrize("region", ["XX", "de", "", "001", "DEU"])
    def test_unsupported_default_region_is_a_programming_error(self, region: str) -> None:
        # Even for a number that would not need the region: misconfiguration shows at once.
        with pytest.raises(ValueError, match="unsupported default phone region") as caught:
            normalize_phone("+49 30 1234567", default_region=region)
        assert not isinstance(caught.value, InvalidIdentifier)

    @pytest.mark.parametrize("normalised", [BERLIN, SAN_FRANCISCO])
    def test_normalised_value_is_stable_in_any_region(self, normalised: str) -> None:
        assert normalize_phone(normalised, default_region="DE") == normalised
        assert normalize_phone(normalised, default_region="US") == normalised


class TestDiscountCard:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("  ABC-123 ", "ABC-123"),
            ("\t0001\n", "0001"),
            # Case and inner characters belong to the card format: kept as they are.
            ("abc-123", "abc-123"),
            ("1234 5678", "1234 5678"),
            ("Karte-Ü", "Karte-Ü"),
            ("C" * MAX_DISCOUNT_CARD_LENGTH, "C" * MAX_DISCOUNT_CARD_LENGTH),
        ],
    )
    def test_only_surrounding_whitespace_is_removed(self, raw: str, expected: str) -> None:
        assert normalize_discount_card(raw) == expected

    def test_case_is_significant(self) -> None:
        assert normalize_discount_card("ab12") != normalize_discount_card("AB12")

    @pytest.mark.parametrize(
        "raw",
        [
            "",
            "   ",
            "C" * (MAX_DISCOUNT_CARD_LENGTH + 1),
            "12\x0034",
            "12\n34",
            "12\x7f34",
            "12\u200b34",
            "12\u202e34",
            "12\u202834",
            "12\ud80034",
        ],
    )
    def test_unusable_values_are_refused(self, raw: str) -> None:
        with pytest.raises(InvalidIdentifier) as caught:
            normalize_discount_card(raw)
        assert_one_line_message(caught.value, "not a valid discount card: ")

    def test_unsafe_character_is_named_by_code_point(self) -> None:
        with pytest.raises(InvalidIdentifier, match="U\\+200B"):
            normalize_discount_card("12\u200b34")


class TestExternalId:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("  crm-42 ", "crm-42"),
            ("CRM-42", "CRM-42"),
            ("a b", "a b"),
            ("Ünïcode/id:7", "Ünïcode/id:7"),
            ("x" * MAX_EXTERNAL_ID_LENGTH, "x" * MAX_EXTERNAL_ID_LENGTH),
        ],
    )
    def test_only_surrounding_whitespace_is_removed(self, raw: str, expected: str) -> None:
        assert normalize_external_id(raw) == expected

    @pytest.mark.parametrize(
        "raw",
        [
            "",
            " \t\n ",
            "x" * (MAX_EXTERNAL_ID_LENGTH + 1),
            "id\x00",
            "id\x1b[0m",
            "id\x7fx",
            "id\u2028x",
            "id\ufeffx",
            "id\ud800",
        ],
    )
    def test_unusable_values_are_refused(self, raw: str) -> None:
        with pytest.raises(InvalidIdentifier) as caught:
            normalize_external_id(raw)
        assert_one_line_message(caught.value, "not a valid external id: ")


def test_invalid_identifier_is_a_value_error() -> None:
    assert issubclass(InvalidIdentifier, ValueError)
