"""Identifier values in their one canonical spelling, computed before any comparison.

A customer is found by `(project, kind, value)`, so every spelling of the same email,
phone number, discount card or external id has to turn into the same `value` here, and
anything that cannot be an identifier of its kind is refused here, with a one-line
message a client can act on. Pure functions: no database, no web framework.
"""

import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult


class InvalidIdentifier(ValueError):
    """Raised when a value cannot be an identifier of its kind.

    str(error) is a one-line message for clients.
    """


# The SMTP limit for a whole address (RFC 5321 path length minus the angle brackets).
MAX_EMAIL_LENGTH = 254
# Generous for any spelling of an E.164 number (at most 15 digits) with separators.
MAX_PHONE_INPUT_LENGTH = 64
MAX_DISCOUNT_CARD_LENGTH = 64
MAX_EXTERNAL_ID_LENGTH = 256
# Installation ids and push tokens; a web-push endpoint URL can be long.
MAX_DEVICE_IDENTIFIER_LENGTH = 2048

# Unicode categories refused inside free-form identifiers: control characters, invisible
# format characters (zero-width space, bidi overrides: they make two values that look the
# same compare different), lone surrogates (cannot be stored as UTF-8) and line/paragraph
# separators (a value is one line).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

_TEL_URI_PREFIX = "tel:"

_PARSE_ERRORS: dict[int, str] = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}

_IMPOSSIBLE_REASONS: dict[int, str] = {
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "a local number: add the area or country code",
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong number of digits",
}


def normalize_email(raw: str) -> str:
    """The address as email-validator normalises it, then lower-cased as a whole.

    Lower-casing the local part is a product rule: RFC 5321 lets a mailbox be
    case-sensitive, but no mail provider customers use is, and one person must not
    become two customers by typing a capital letter. The domain keeps its Unicode form
    (IDNA-checked by email-validator), so "bücher.de" and "xn--bcher-kva.de" are one.
    """
    value = _stripped(raw, label="email address", max_length=MAX_EMAIL_LENGTH)
    try:
        validated = validate_email(
            value,
            # Syntax only: DNS lookups are slow, flaky and would make identity depend on
            # the network.
            check_deliverability=False,
            # Pinned here rather than left to the library's module-level defaults, which
            # any importer can change, so the canonical form cannot drift.
            allow_smtputf8=True,
            allow_empty_local=False,
            # Quoted local parts ("john doe"@x.com) are legal but practically never a real
            # customer's address, and their equivalences (quoting, escapes) are a trap.
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            # Reserved names (localhost, *.local, *.test, *.invalid) never receive mail.
            globally_deliverable=True,
            test_environment=False,
        )
    except EmailNotValidError as error:
        raise InvalidIdentifier(f"not a valid email address: {error}") from None
    return validated.normalized.lower()


def normalize_phone(raw: str, *, default_region: str) -> str:
    """The number in E.164 form ("+49301234567").

    `default_region` (ISO 3166-1 alpha-2, upper case, e.g. "DE") is used only for a number
    written without a country code; it also decides which international prefix is
    understood ("00" in DE, "011" in US). An unsupported region is a configuration bug, not
    a client error, so it raises a plain ValueError, whatever the number looks like.
    """
    if default_region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unsupported default phone region: {default_region!r}")
    value = _stripped(raw, label="phone number", max_length=MAX_PHONE_INPUT_LENGTH)
    # phonenumbers skips such characters silently; refusing them keeps garbage (a NUL, a
    # bidi override) from passing as a number.
    _reject_unsafe_characters(value, label="phone number")
    # phonenumbers reads letters as keypad digits (1-800-FLOWERS) and words as extension
    # markers; customers' phone numbers are digits, so a letter is far more likely a typo or
    # the wrong field than a vanity number. Only the RFC 3966 "tel:" prefix itself is exempt
    # (so its parameters, such as ";ext=" or ";phone-context=", are refused too).
    digits_part = value[len(_TEL_URI_PREFIX) :] if _has_tel_prefix(value) else value
    if any(character.isalpha() for character in digits_part):
        raise InvalidIdentifier("not a valid phone number: letters are not allowed")
    try:
        number = phonenumbers.parse(value, default_region)
    except NumberParseException as error:
        reason = _PARSE_ERRORS.get(error.error_type, "not a phone number")
        raise InvalidIdentifier(f"not a valid phone number: {reason}") from None
    # E.164 cannot carry an extension; dropping it silently would make every extension of
    # one switchboard the same customer.
    if number.extension is not None:
        raise InvalidIdentifier("not a valid phone number: extensions are not supported")
    # Exactly IS_POSSIBLE: phonenumbers' is_possible_number() also accepts "local only"
    # numbers (dialable only inside their area), which have no true E.164 form. Validity
    # against the numbering plan (is_valid_number) is deliberately not required: it would
    # refuse newly opened number ranges until the library's metadata catches up.
    possibility = phonenumbers.is_possible_number_with_reason(number)
    if possibility != ValidationResult.IS_POSSIBLE:
        reason = _IMPOSSIBLE_REASONS.get(possibility, "not a possible number")
        raise InvalidIdentifier(f"not a valid phone number: {reason}")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def normalize_discount_card(raw: str) -> str:
    """The card number without surrounding whitespace; inner characters and case are kept.

    Card formats belong to each project's loyalty system, so nothing inside is guessed at:
    "AB 12" and "ab12" are different cards.
    """
    value = _stripped(raw, label="discount card", max_length=MAX_DISCOUNT_CARD_LENGTH)
    _reject_unsafe_characters(value, label="discount card")
    return value


def normalize_external_id(raw: str) -> str:
    """The id without surrounding whitespace; inner characters and case are kept."""
    value = _stripped(raw, label="external id", max_length=MAX_EXTERNAL_ID_LENGTH)
    _reject_unsafe_characters(value, label="external id")
    return value


def normalize_device_identifier(raw: str) -> str:
    """An installation id or push token: opaque, so only trimmed and checked."""
    value = _stripped(raw, label="device identifier", max_length=MAX_DEVICE_IDENTIFIER_LENGTH)
    _reject_unsafe_characters(value, label="device identifier")
    return value


def _stripped(raw: str, *, label: str, max_length: int) -> str:
    value = raw.strip()
    if not value:
        raise InvalidIdentifier(f"not a valid {label}: it is empty")
    # Checked before any parsing so that no library ever sees an oversized input.
    if len(value) > max_length:
        raise InvalidIdentifier(f"not a valid {label}: longer than {max_length} characters")
    return value


def _reject_unsafe_characters(value: str, *, label: str) -> None:
    for character in value:
        if unicodedata.category(character) in _UNSAFE_CATEGORIES:
            raise InvalidIdentifier(
                f"not a valid {label}: contains an invisible or control character "
                f"(U+{ord(character):04X})"
            )


def _has_tel_prefix(value: str) -> bool:
    # URI schemes are case-insensitive (RFC 3986), so "TEL:" counts too.
    return value[: len(_TEL_URI_PREFIX)].lower() == _TEL_URI_PREFIX


def supported_phone_region(region: str) -> str:
    """The region itself if phone numbers can be read for it (a validator for settings)."""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{region} is not a region phone numbers can be read for")
    return region
