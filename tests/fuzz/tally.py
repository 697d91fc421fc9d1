"""Counts of the spec fuzzing run, for the terminal summary.

Under pytest-xdist the operations run in several workers: each sends its counts to the
controller when it finishes (`export`, `merge`; hooks in tests/conftest.py, the one
conftest the controller loads), which prints the sum."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Tally:
    operations: set[str] = field(default_factory=set)
    cases: Counter[str] = field(default_factory=Counter)

    def count(self, operation: str, phase: str, mode: str) -> None:
        self.operations.add(operation)
        self.cases[f"{phase} {mode}"] += 1

    def export(self) -> dict[str, Any]:
        return {"operations": sorted(self.operations), "cases": dict(self.cases)}

    def merge(self, exported: dict[str, Any]) -> None:
        self.operations.update(exported["operations"])
        self.cases.update(exported["cases"])

    def summary(self) -> str:
        by_mode: Counter[str] = Counter()
        for key, number in self.cases.items():
            by_mode[key.split()[1]] += number
        details = ", ".join(f"{key}: {number}" for key, number in sorted(self.cases.items()))
        return (
            f"schemathesis: {len(self.operations)} operations, {sum(self.cases.values())} cases "
            f"({by_mode['positive']} positive, {by_mode['negative']} negative; {details})"
        )


TALLY = Tally()
