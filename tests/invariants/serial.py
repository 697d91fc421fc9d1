"""Answers of requests that ran at the same time, judged as the database must have run
them: one after the other, in some order.

PostgreSQL serialises the transactions that touch the same rows (the app's advisory and
row locks), so each answer of a burst must be what its request gets in one serial order
of the burst, and the data must be where that order ends. Which order is not for the
test to say: two merges of the same customer may win either way, a write raced by an
erase may come before it (applied, then erased) or after it (404). So every order is
tried, depth first, until one explains it all; none doing so is the failure.
"""

from collections.abc import Callable, Sequence

import httpx

from tests.invariants.members import Member, Refuted
from tests.invariants.model import Model

# Where the model ends against the data: empty when the data is where it ends.
Ending = Callable[[Model], list[str]]


def explain(
    model: Model,
    members: Sequence[Member],
    responses: Sequence[httpx.Response],
    ending: Ending,
) -> Model:
    """The model after the first serial order of the members that explains every answer
    and ends where the data is; an AssertionError saying why not if none does."""
    start = model.copy()
    start.writes = 0
    found = _search(start, members, responses, tuple(range(len(members))), ending)
    if found is None:
        raise AssertionError(_why_not(start, members, responses, ending))
    return found


def _search(
    model: Model,
    members: Sequence[Member],
    responses: Sequence[httpx.Response],
    remaining: tuple[int, ...],
    ending: Ending,
) -> Model | None:
    if not remaining:
        return None if ending(model) else model
    for index in remaining:
        trial = model.copy()
        try:
            members[index].judge(trial, responses[index])
        except Refuted:
            continue
        rest = tuple(other for other in remaining if other != index)
        found = _search(trial, members, responses, rest, ending)
        if found is not None:
            return found
    return None


def _why_not(
    model: Model,
    members: Sequence[Member],
    responses: Sequence[httpx.Response],
    ending: Ending,
) -> str:
    """The requests with their answers, and what goes wrong in the order they were sent
    (a refuted answer leaves the model as it was and the judging goes on)."""
    lines: list[str] = []
    if len(members) > 1:
        lines.append(f"no serial order of these {len(members)} concurrent requests explains them:")
        lines += [
            f"  [{n}] {member.request} -> {response.status_code} {response.text[:300]}"
            for n, (member, response) in enumerate(zip(members, responses, strict=True))
        ]
        lines.append("judged in the order sent:")
    for n, (member, response) in enumerate(zip(members, responses, strict=True)):
        trial = model.copy()
        try:
            member.judge(trial, response)
        except Refuted as refuted:
            lines.append(f"  [{n}] {member.request}: {refuted}")
            continue
        model = trial
    lines += [f"  ends with: {problem}" for problem in ending(model)]
    return "\n".join(lines)
