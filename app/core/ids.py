"""Identifiers for new rows: UUIDv7, so that ids sort by creation time (keyset pagination)."""

import uuid

from uuid_utils import compat


def new_id() -> uuid.UUID:
    """A new time-ordered UUID (version 7)."""
    return compat.uuid7()
