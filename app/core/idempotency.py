"""Idempotency-Key: a retried POST that creates or moves value replays its first answer.

The key is claimed inside the use case's own transaction and the answer stored in it, so
the effect and its record commit together: exactly once, even across crashes. A second
request with the same key waits on the unique index until the first commits, then
replays its answer; the same key with another body is a 409.

Keys are kept for a retention period (`CDP_IDEMPOTENCY_KEY_RETENTION_HOURS`, 24 h by
default, like the payment APIs clients know): a housekeeping loop deletes older ones, so
the table holds a day of writes, not every write ever made. A retry is a matter of
seconds or minutes; after the retention the same key is a new request.
"""

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    cast,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSON, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UnitOfWork
from app.core.errors import Conflict
from app.core.ids import new_id
from app.core.retry import DEFAULT_ATTEMPTS, with_retries

MAX_KEY_LENGTH = 255


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        Index(
            "uq_idempotency_keys_project_id_operation_key",
            "project_id",
            "operation",
            "key",
            unique=True,
        ),
        # The purge finds expired keys by age without reading the whole table.
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    operation: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    # json, not jsonb: a replay must be the first answer byte for byte, key order included.
    response: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


@dataclass(frozen=True)
class IdempotentRequest:
    """What identifies a retry: the key, the operation, and a digest of the request."""

    key: str
    operation: str
    fingerprint: str

    @classmethod
    def of(cls, key: str, operation: str, payload: Any) -> "IdempotentRequest":
        return cls(key=key, operation=operation, fingerprint=_fingerprint(payload))


def _fingerprint(payload: Any) -> str:
    """A digest of the request; the same payload always gives the same one. A raw body
    (a batch's items are checked one by one later) may hold an integer beyond 64 bits,
    which orjson cannot write: those go through the standard library instead."""
    try:
        canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any


async def claim(
    session: AsyncSession, project_id: uuid.UUID, request: IdempotentRequest
) -> StoredResponse | None:
    """None: this transaction owns the key and must `remember` its answer. Else the answer
    of the request that used the key first (same body), or a 409 (another body)."""
    claimed = await session.execute(
        insert(IdempotencyRecord)
        .values(
            id=new_id(),
            project_id=project_id,
            operation=request.operation,
            key=request.key,
            fingerprint=request.fingerprint,
        )
        .on_conflict_do_nothing()
        .returning(IdempotencyRecord.id)
    )
    if claimed.first() is not None:
        return None
    existing = (
        await session.execute(
            select(
                IdempotencyRecord.fingerprint,
                IdempotencyRecord.status_code,
                IdempotencyRecord.response,
            ).where(
                IdempotencyRecord.project_id == project_id,
                IdempotencyRecord.operation == request.operation,
                IdempotencyRecord.key == request.key,
            )
        )
    ).one()
    if existing.fingerprint != request.fingerprint or existing.status_code is None:
        raise Conflict("This Idempotency-Key was used for a different request; use a new key.")
    return StoredResponse(status_code=existing.status_code, body=existing.response)


async def remember(
    session: AsyncSession,
    project_id: uuid.UUID,
    request: IdempotentRequest,
    response: StoredResponse,
) -> None:
    await session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.project_id == project_id,
            IdempotencyRecord.operation == request.operation,
            IdempotencyRecord.key == request.key,
        )
        .values(status_code=response.status_code, response=response.body)
    )


async def forget_responses_mentioning(
    session: AsyncSession, project_id: uuid.UUID, needles: Sequence[str]
) -> None:
    """Drop stored responses that contain any of these strings (an erased customer's ids
    and identifiers): a replay of them is no longer possible, which is the point."""
    if not needles:
        return
    body = cast(IdempotencyRecord.response, Text)
    await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.project_id == project_id,
            or_(*(body.contains(needle, autoescape=True) for needle in needles)),
        )
    )


async def purge_expired(
    uow: UnitOfWork, *, now: datetime, retention: timedelta, batch: int = 5000
) -> int:
    """Delete the keys created before `now - retention`; the number deleted.

    In batches, each its own short transaction: a purge of a large backlog never holds
    many row locks at once or one long transaction against the writes of the API."""
    cutoff = now - retention
    purged = 0
    while True:
        async with uow:
            expired = (
                select(IdempotencyRecord.id)
                .where(IdempotencyRecord.created_at < cutoff)
                .limit(batch)
                .scalar_subquery()
            )
            deleted = await uow.session.execute(
                delete(IdempotencyRecord)
                .where(IdempotencyRecord.id.in_(expired))
                .returning(IdempotencyRecord.id)
            )
            count = len(deleted.all())
        purged += count
        if count < batch:
            return purged


async def once_per_key(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    idempotent: IdempotentRequest | None,
    work: Callable[[AsyncSession], Awaitable[StoredResponse]],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
) -> StoredResponse:
    """`work` in one transaction, its answer kept under the Idempotency-Key (if any) in
    the same transaction; a key already used replays its answer instead. Started over
    (`with_retries`) after a lost race, such as a customer merged or erased between
    being resolved and being locked."""

    async def attempt() -> StoredResponse:
        async with uow:
            session = uow.session
            if idempotent is not None:
                replay = await claim(session, project_id, idempotent)
                if replay is not None:
                    return replay
            response = await work(session)
            if idempotent is not None:
                await remember(session, project_id, idempotent, response)
            return response

    return await with_retries(attempt, attempts=attempts)
