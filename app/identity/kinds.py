"""Identifier kinds: what can identify a customer, and how many of each one may hold."""

from typing import Final

CUSTOMER_ID: Final = "customer_id"
EMAIL: Final = "email"
PHONE: Final = "phone"
DISCOUNT_CARD: Final = "discount_card"
APP_INSTALLATION: Final = "app_installation"
PUSH_TOKEN: Final = "push_token"  # noqa: S105 (a kind name, not a secret)
EXTERNAL_PREFIX: Final = "external:"

# A customer may hold many of these; every other kind (email, phone, each external id) once.
MULTI_VALUED_KINDS: Final = frozenset({DISCOUNT_CARD, APP_INSTALLATION, PUSH_TOKEN})

# Which match wins when identifiers point at different customers (highest first). A
# project may reorder these groups (projects.identifier_priority).
PRIORITY_GROUPS: Final = (CUSTOMER_ID, "external", DISCOUNT_CARD, PHONE, EMAIL, "device")
DEFAULT_PRIORITY: Final = PRIORITY_GROUPS


def external_kind(field_key: str) -> str:
    return EXTERNAL_PREFIX + field_key


def is_external(kind: str) -> bool:
    return kind.startswith(EXTERNAL_PREFIX)


def external_field(kind: str) -> str:
    return kind.removeprefix(EXTERNAL_PREFIX)


def is_single_valued(kind: str) -> bool:
    return kind not in MULTI_VALUED_KINDS


def priority_group(kind: str) -> str:
    """The entry of the priority list a kind belongs to."""
    if is_external(kind):
        return "external"
    if kind in (APP_INSTALLATION, PUSH_TOKEN):
        return "device"
    return kind


def priority_rank(kind: str, priority: tuple[str, ...] = DEFAULT_PRIORITY) -> int:
    """Lower is stronger; kinds missing from the list rank last."""
    group = priority_group(kind)
    return priority.index(group) if group in priority else len(priority)
