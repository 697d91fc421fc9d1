"""Import rows as response bodies."""

from app.imports.models import SUCCEEDED, Import, ImportSchedule
from app.imports.schemas import ImportCounts, ImportOptions, ImportRead, ScheduleRead


def import_read(row: Import) -> ImportRead:
    return ImportRead(
        id=row.id,
        status=row.status,
        source_kind=row.source_kind,
        source_name=row.source_name,
        source=row.source,
        options=ImportOptions.model_validate(row.options),
        counts=ImportCounts(
            rows_read=row.rows_read,
            created=row.created,
            updated=row.updated,
            merged=row.merged,
            skipped=row.skipped,
            failed=row.failed,
            duplicates=row.duplicates,
        ),
        progress=_progress(row),
        error=row.error,
        touchpoint=row.touchpoint,
        job_id=row.job_id,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        errors_url=f"/v1/imports/{row.id}/errors",
    )


def _progress(row: Import) -> float:
    if row.status == SUCCEEDED:
        return 1.0
    if not row.file_bytes:
        return 0.0
    return round(min(row.bytes_done / row.file_bytes, 1.0), 4)


def schedule_read(row: ImportSchedule) -> ScheduleRead:
    return ScheduleRead(
        id=row.id,
        source=row.source,
        options=ImportOptions.model_validate(row.options),
        every_minutes=row.every_minutes,
        enabled=row.enabled,
        last_polled_at=row.last_polled_at,
        last_error=row.last_error,
        created_at=row.created_at,
    )
