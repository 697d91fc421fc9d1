"""The spec fuzzing shares one project across all operations (tables are emptied once, when
the module ends), and prints what it ran: operations and cases by phase and generation mode."""

import tempfile
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tests.fuzz.tally import TALLY

# Hypothesis keeps caches in ./.hypothesis (the example database is off, see the test):
# the temp folder keeps the tree clean. Set at import, before Hypothesis touches storage.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "cdp-tests-hypothesis")


@pytest.fixture(autouse=True)
async def _empty_tables() -> None:
    """Overrides the per-test emptying: state built by one operation stays for the next."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.cases:
        return
    terminalreporter.write_line(TALLY.summary())
