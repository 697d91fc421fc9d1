"""The spec fuzzing shares one project across all operations (tables are emptied once, when
the module ends). What it ran is printed by tests/conftest.py (see tests/fuzz/tally.py)."""

import pytest


@pytest.fixture(autouse=True)
async def _empty_tables() -> None:
    """Overrides the per-test emptying: state built by one operation stays for the next."""
