"""Counts of the spec fuzzing run, for the terminal summary."""

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    operations: set[str] = field(default_factory=set)
    cases: Counter[str] = field(default_factory=Counter)

    def count(self, operation: str, phase: str, mode: str) -> None:
        self.operations.add(operation)
        self.cases[f"{phase} {mode}"] += 1

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
