"""Values that never identify anyone: placeholders that sloppy clients send as identifiers.

A blocked value in a request is ignored for matching, never attached to a profile, and
reported back as ignored. A built-in list applies to every project; a project adds its
own exact values or regular expressions.
"""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import UnitOfWork
from app.core.errors import FieldError, InvalidInput, NotFound
from app.identity import kinds, repository
from app.identity.models import BlockedIdentifier
from app.projects import service as projects_service

RuleSource = Literal["default", "project"]
MAX_PATTERN_LENGTH = 200


@dataclass(frozen=True)
class BlockRule:
    kind: str | None  # None: any kind
    pattern: str
    is_regex: bool
    source: RuleSource
    id: uuid.UUID | None = None

    def matches(self, kind: str, candidates: Sequence[str]) -> bool:
        if self.kind is not None and self.kind != kind:
            return False
        if self.is_regex:
            compiled = re.compile(self.pattern, re.IGNORECASE)
            return any(compiled.search(candidate) for candidate in candidates)
        wanted = self.pattern.casefold()
        return any(candidate.casefold() == wanted for candidate in candidates)


def _exact(pattern: str, kind: str | None = None) -> BlockRule:
    return BlockRule(kind=kind, pattern=pattern, is_regex=False, source="default")


def _regex(pattern: str, kind: str | None = None) -> BlockRule:
    return BlockRule(kind=kind, pattern=pattern, is_regex=True, source="default")


DEFAULT_RULES: tuple[BlockRule, ...] = (
    *(
        _exact(value)
        for value in ("null", "undefined", "none", "nil", "nan", "n/a", "na", "unknown", "-")
    ),
    _regex(r"^0+$"),
    *(
        _exact(value, kinds.EMAIL)
        for value in (
            "test@test.com",
            "test@example.com",
            "example@example.com",
            "email@example.com",
            "user@example.com",
            "noemail@noemail.com",
            "no@email.com",
            "none@none.com",
            "null@null.com",
        )
    ),
    _regex(r"^(no-?reply|no-?email|do-?not-?reply)@", kinds.EMAIL),
    # One digit repeated (+1111111111) or the keyboard run 123456789.
    _regex(r"^\+?(\d)\1{6,}$", kinds.PHONE),
    _regex(r"^\+?\d?1234567890?$", kinds.PHONE),
)


class Blocklist:
    """The rules, indexed once: exact values as a set and patterns compiled, per kind, so a
    check costs a few lookups however long the list is (a bulk import checks every cell)."""

    def __init__(self, rules: Sequence[BlockRule]) -> None:
        self.rules = tuple(rules)
        self._exact: dict[str | None, set[str]] = {}
        self._patterns: dict[str | None, list[re.Pattern[str]]] = {}
        for rule in self.rules:
            if rule.is_regex:
                compiled = re.compile(rule.pattern, re.IGNORECASE)
                self._patterns.setdefault(rule.kind, []).append(compiled)
            else:
                self._exact.setdefault(rule.kind, set()).add(rule.pattern.casefold())

    def blocks(self, kind: str, raw: str, normalized: str | None = None) -> bool:
        """Checked on the raw value too, so `null` is ignored rather than refused as invalid."""
        candidates = [raw.strip()] + ([normalized] if normalized is not None else [])
        return any(self._blocks_one(kind, candidate) for candidate in candidates)

    def _blocks_one(self, kind: str, candidate: str) -> bool:
        folded = candidate.casefold()
        for rule_kind in (None, kind):
            if folded in self._exact.get(rule_kind, ()):
                return True
            if any(p.search(candidate) for p in self._patterns.get(rule_kind, ())):
                return True
        return False


async def load_blocklist(session: AsyncSession, project_id: uuid.UUID) -> Blocklist:
    return Blocklist(
        [*DEFAULT_RULES, *_project_rules(await repository.list_blocked(session, project_id))]
    )


def _project_rules(rows: Sequence[BlockedIdentifier]) -> list[BlockRule]:
    return [
        BlockRule(kind=r.kind, pattern=r.pattern, is_regex=r.is_regex, source="project", id=r.id)
        for r in rows
    ]


async def list_rules(uow: UnitOfWork, project_id: uuid.UUID) -> list[BlockRule]:
    async with uow:
        return [
            *DEFAULT_RULES,
            *_project_rules(await repository.list_blocked(uow.session, project_id)),
        ]


async def add_rule(
    uow: UnitOfWork, project_id: uuid.UUID, *, kind: str | None, pattern: str, is_regex: bool
) -> BlockRule:
    if is_regex:
        _check_regex(pattern)
    async with uow:
        row = await repository.add_blocked(
            uow.session,
            BlockedIdentifier(project_id=project_id, kind=kind, pattern=pattern, is_regex=is_regex),
        )
        await projects_service.bump_rules_version(uow.session, project_id)
        return _project_rules([row])[0]


def _check_regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise InvalidInput(
            "The pattern is not a valid regular expression.",
            errors=[FieldError(pointer="/pattern", message=str(error))],
        ) from error


async def remove_rule(uow: UnitOfWork, project_id: uuid.UUID, rule_id: uuid.UUID) -> None:
    async with uow:
        if not await repository.delete_blocked(uow.session, project_id, rule_id):
            raise NotFound(f"No blocklist entry {rule_id}.")
        await projects_service.bump_rules_version(uow.session, project_id)
