"""Response bodies of jobs."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.schema_names import SchemaName

JobStatus = Annotated[Literal["queued", "running", "succeeded", "failed"], SchemaName("JobStatus")]


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    status: JobStatus
    progress: dict[str, Any] = Field(description='Free-form, e.g. {"done": 40, "total": 100}.')
    attempts: int
    result: Annotated[dict[str, Any], SchemaName("JobResult")] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
