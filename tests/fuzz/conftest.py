"""The spec fuzzing shares one project across all operations (tables are emptied once, when
the module ends), and prints what it ran: operations and cases by phase and generation mode."""

import pytest

from tests.fuzz.tally import TALLY


@pytest.fixture(autouse=True)
async def _empty_tables() -> None:
    """Overrides the per-test emptying: state built by one operation stays for the next."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.cases:
        return
    terminalreporter.write_line(TALLY.summary())
