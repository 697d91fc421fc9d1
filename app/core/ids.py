"""Identifiers for new rows: UUIDv7, so that ids sort by creation time (keyset pagination)."""

import uuid

import uuid_utils
from uuid_utils import compat


def new_id() -> uuid.UUID:
    """A new time-ordered UUID (version 7)."""
    return compat.uuid7()


def new_row_id() -> uuid_utils.UUID:
    """The same UUIDv7 without the conversion to uuid.UUID (most of new_id's cost), for
    rows written in bulk with COPY: asyncpg encodes any object with `.bytes`."""
    return uuid_utils.uuid7()
