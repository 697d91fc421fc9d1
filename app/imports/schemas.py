"""Request and response bodies of imports."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.schema_names import SchemaName
from app.customers.schemas import OnConflict
from app.projects.schemas import PhoneRegion

ImportStatus = Annotated[
    Literal["queued", "running", "succeeded", "failed", "cancelled"], SchemaName("ImportStatus")
]
SourceKind = Annotated[Literal["upload", "ftp", "cli"], SchemaName("ImportSourceKind")]
Encoding = Literal["utf-8", "utf-16", "latin-1", "cp1252"]

_MAPPING_DESCRIPTION = (
    "CSV header -> target. Targets: `email`, `phone`, `discount_cards` (several, separated "
    "by `list_separator`), `external.<field>` (a unique_id custom field), the profile fields "
    "(`first_name`, `last_name`, `middle_name`, `birth_date`, `gender`, `area`, `time_zone`), "
    "`custom.<field>`, `subscription.<channel>` or `subscription.<channel>.<topic>` (a status), "
    "and `ignore`. A header that is not mapped must itself be a target."
)


class ImportOptions(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"mapping": {"E-Mail": "email", "Card": "discount_cards"}}]
        },
    )

    mapping: dict[Annotated[str, Field(max_length=200)], str] = Field(
        default_factory=dict, max_length=500, description=_MAPPING_DESCRIPTION
    )
    on_conflict: OnConflict = Field(
        default="reject",
        description="When a row's identifiers match different customers, as in identify: "
        "`reject` (the row goes to the error report), `reassign` or `merge`.",
    )
    default_phone_region: PhoneRegion | None = Field(
        default=None, description="For numbers without a country code; default: the project's."
    )
    touchpoint: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None,
        description="Recorded in the changelogs; default `import:<id>`. Must be one of the "
        "key's allowed touchpoints.",
    )
    dry_run: bool = Field(
        default=False,
        description="Validate and resolve every batch, count, then roll it back: nothing is "
        "written but the counts and the error report.",
    )
    delimiter: Literal[",", ";", "\t", "|"] = ","
    encoding: Encoding = Field(
        default="utf-8", description="`utf-8` accepts a file with or without a byte order mark."
    )
    list_separator: Literal["|", ";", ","] = Field(
        default="|", description="Separates several discount cards in one cell."
    )

    @model_validator(mode="after")
    def _separators_differ(self) -> "ImportOptions":
        if self.list_separator == self.delimiter:
            raise ValueError("list_separator must differ from the delimiter")
        return self


class FtpSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: int = Field(default=21, ge=1, le=65535)
    path: Annotated[str, Field(min_length=1, max_length=1024)]
    username: Annotated[str, Field(min_length=1, max_length=200)] = "anonymous"
    password: Annotated[str, Field(max_length=500)] | None = Field(
        default=None, description="Kept only until the file is fetched; never returned."
    )
    password_ref: Annotated[str, Field(pattern=r"^[A-Z0-9_]{1,64}$")] | None = Field(
        default=None,
        description="Name a secret configured on the server instead of sending the password: "
        "the environment variable `CDP_FTP_PASSWORD_<password_ref>`.",
    )
    tls: bool = Field(default=False, description="Explicit FTPS (AUTH TLS).")

    @model_validator(mode="after")
    def _one_password(self) -> "FtpSource":
        if self.password is not None and self.password_ref is not None:
            raise ValueError("send password or password_ref, not both")
        return self


class ImportSourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ftp: FtpSource


class ImportCreate(BaseModel):
    """An import pulled from an FTP server (an upload is sent as multipart/form-data)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": {
                        "ftp": {
                            "host": "ftp.example.com",
                            "path": "/exports/customers.csv",
                            "username": "cdp",
                            "password_ref": "CRM",
                        }
                    },
                    "options": {"on_conflict": "merge"},
                }
            ]
        },
    )

    source: ImportSourceIn
    options: ImportOptions = Field(default_factory=ImportOptions)


class ImportCounts(BaseModel):
    rows_read: int = Field(description="Data rows read so far (the header is not counted).")
    created: int
    updated: int = Field(description="Rows that changed an existing customer.")
    merged: int = Field(description="Rows that merged customers (on_conflict=merge).")
    skipped: int = Field(description="Rows that matched a customer and changed nothing.")
    failed: int = Field(description="Rows refused: each is in the error report.")
    duplicates: int = Field(
        description="Rows repeating an identifier of an earlier row of the file: applied "
        "after it (the later row wins) and noted in the error report."
    )


class ImportRead(BaseModel):
    id: uuid.UUID
    status: ImportStatus
    source_kind: SourceKind
    source_name: str
    source: dict[str, object] = Field(description="The FTP source, without any password.")
    options: ImportOptions
    counts: ImportCounts
    progress: float = Field(description="Share of the file's bytes processed, 0 to 1.")
    error: str | None
    touchpoint: str
    job_id: uuid.UUID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    errors_url: str = Field(description="The error report (CSV).")


class ScheduleCreate(BaseModel):
    """Poll a directory on an FTP server; every new file in it is imported once."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "ftp": {
                        "host": "ftp.example.com",
                        "path": "/exports",
                        "username": "cdp",
                        "password_ref": "CRM",
                    },
                    "done_directory": "/exports/done",
                    "every_minutes": 60,
                    "options": {"on_conflict": "merge"},
                }
            ]
        },
    )

    ftp: FtpSource = Field(description="`path` is the directory to poll.")
    done_directory: Annotated[str, Field(min_length=1, max_length=1024)] | None = Field(
        default=None,
        description="Move each file here once its import succeeded; otherwise files stay and "
        "are only marked as taken.",
    )
    pattern: Annotated[str, Field(max_length=200)] = Field(
        default="*.csv", description="Shell-style pattern of the file names to take."
    )
    every_minutes: int = Field(default=15, ge=1, le=10080)
    options: ImportOptions = Field(default_factory=ImportOptions)


class ScheduleRead(BaseModel):
    id: uuid.UUID
    source: dict[str, object]
    options: ImportOptions
    every_minutes: int
    enabled: bool
    last_polled_at: datetime | None
    last_error: str | None
    created_at: datetime
