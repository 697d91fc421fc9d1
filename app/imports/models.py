"""Tables of bulk imports: the import itself, its error report, and scheduled FTP pulls."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.ids import new_id

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)

# The counters every batch adds to, in one UPDATE with the batch's writes.
COUNTERS = ("rows_read", "created", "updated", "merged", "skipped", "failed", "duplicates")


class Import(Base):
    __tablename__ = "imports"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"
        ),
        CheckConstraint("source_kind IN ('upload', 'ftp', 'cli')", name="source_kind"),
        Index("ix_imports_project_id_id", "project_id", "id"),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 (read once, at mapping)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'queued'"))
    source_kind: Mapped[str] = mapped_column(String(16))
    # What the caller named: the uploaded file's name, or the FTP path. Never a password.
    source_name: Mapped[str] = mapped_column(String(1024))
    # The FTP source without its password (that is in `ftp_secret`, never returned).
    source: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    ftp_secret: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The local copy the worker reads; deleted when the import ends.
    file_path: Mapped[str | None] = mapped_column(String(4096))
    file_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Data rows committed so far: a resumed run skips exactly these.
    rows_done: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    # How far into the file those rows reach, for progress.
    bytes_done: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    rows_read: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    updated: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    merged: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    skipped: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    failed: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    duplicates: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(String(2000))
    touchpoint: Mapped[str] = mapped_column(String(100))
    initiator: Mapped[str] = mapped_column(String(100))
    initiator_key_id: Mapped[uuid.UUID | None] = mapped_column()
    job_id: Mapped[uuid.UUID | None] = mapped_column()
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("import_schedules.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ImportRowError(Base):
    """One line of the error report: a refused row (or a note on a row, such as a duplicate)."""

    __tablename__ = "import_errors"
    __table_args__ = (Index("ix_import_errors_import_id_row", "import_id", "row_number", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"))
    row_number: Mapped[int] = mapped_column(BigInteger)
    column: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(String(2000))
    original_row: Mapped[str] = mapped_column(Text)


class ImportSchedule(Base):
    """A directory on an FTP server that a project has the service poll for new files."""

    __tablename__ = "import_schedules"
    __table_args__ = (Index("ix_import_schedules_project_id", "project_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    # host, port, directory, username, tls, done_directory: no password.
    source: Mapped[dict[str, Any]] = mapped_column(JSONB)
    ftp_secret: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSONB)
    every_minutes: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    last_polled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(2000))
    touchpoint: Mapped[str] = mapped_column(String(100))
    initiator: Mapped[str] = mapped_column(String(100))
    initiator_key_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ImportScheduledFile(Base):
    """A file a schedule has taken: each (schedule, name, size, modified) is imported once."""

    __tablename__ = "import_scheduled_files"
    __table_args__ = (
        Index(
            "uq_import_scheduled_files_schedule_id_name_fingerprint",
            "schedule_id",
            "name",
            "fingerprint",
            unique=True,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    schedule_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("import_schedules.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(1024))
    # Size and modification time as the server listed them: a re-uploaded file is new.
    fingerprint: Mapped[str] = mapped_column(String(200))
    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
