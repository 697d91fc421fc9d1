"""HTTP endpoints of imports: start one (upload or FTP), follow it, read its error report,
cancel it; and the schedules that poll an FTP directory."""

import asyncio
import uuid
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from starlette.datastructures import UploadFile

from app.core.auth import Principal, Scope
from app.core.dependencies import SettingsDep, UnitOfWorkDep
from app.core.errors import FieldError, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from app.core.ids import new_id
from app.core.pagination import (
    DEFAULT_PAGE_LIMIT,
    Page,
    PageCursor,
    PageLimit,
    decode_id_cursor,
    split_page,
)
from app.core.problems import problem_responses
from app.imports import schedules, service
from app.imports.models import Import
from app.imports.presenters import import_read, schedule_read
from app.imports.report import report_csv
from app.imports.schemas import (
    ImportCreate,
    ImportOptions,
    ImportRead,
    ScheduleCreate,
    ScheduleRead,
)
from app.imports.service import ImportOwner, Storage
from app.projects.auth import require_scope

router = APIRouter(tags=["imports"], responses=problem_responses(401, 403, 404, 422, 429))
ImporterDep = Annotated[Principal, Depends(require_scope(Scope.IMPORTS_WRITE))]

_CHUNK_BYTES = 1024 * 1024
_UPLOAD_SCHEMA: dict[str, Any] = {
    "title": "ImportUpload",
    "type": "object",
    "required": ["file"],
    "examples": [{"file": "email,first_name\njane@example.com,Jane\n"}],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "The CSV file."},
        "options": {
            "type": "string",
            "description": "ImportOptions as a JSON text (optional).",
            "examples": ['{"on_conflict": "merge", "mapping": {"E-Mail": "email"}}'],
        },
    },
}
_CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"$ref": "#/components/schemas/ImportUpload"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/ImportCreate"}},
        },
    }
}


def published_schemas() -> dict[str, dict[str, Any]]:
    """The request bodies `imports_create` reads itself (it takes JSON or multipart), for
    the spec's components: FastAPI only publishes the models of declared parameters."""
    create = ImportCreate.model_json_schema(ref_template="#/components/schemas/{model}")
    nested: dict[str, dict[str, Any]] = create.pop("$defs", {})
    return nested | {"ImportCreate": create, "ImportUpload": _UPLOAD_SCHEMA}


@router.post(
    "/v1/imports",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(409, 413, 415),
    operation_id="imports_create",
    openapi_extra=_CREATE_BODY,
)
async def imports_create(
    request: Request,
    response: Response,
    uow: UnitOfWorkDep,
    principal: ImporterDep,
    settings: SettingsDep,
) -> ImportRead:
    """Queue an import: a CSV uploaded as multipart/form-data (part `file`, optional part
    `options`), or `{"source": {"ftp": ...}}` as JSON to pull the file from an FTP server.
    Follow it at the returned Location."""
    storage = Storage.from_settings(settings)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        row = await _create_from_upload(request, uow, ImportOwner.of_key(principal), storage)
    elif media_type == "application/json":
        body = _parsed(ImportCreate, await request.body(), ())
        row = await service.create_ftp(uow, ImportOwner.of_key(principal), storage, body)
    else:
        raise UnsupportedMediaType(
            "Send the file as multipart/form-data, or an FTP source as application/json."
        )
    response.headers["Location"] = f"/v1/imports/{row.id}"
    return import_read(row)


async def _create_from_upload(
    request: Request, uow: UnitOfWorkDep, owner: ImportOwner, storage: Storage
) -> Import:
    # Starlette spools each file part to a temporary file past 1 MiB: never held in memory.
    async with request.form(max_files=1, max_fields=2) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput(
                "The CSV must be the multipart part named `file`.",
                errors=[FieldError(pointer="/file", message="Missing file part")],
            )
        raw_options = form.get("options")
        options = (
            _parsed(ImportOptions, raw_options, ("options",))
            if isinstance(raw_options, str)
            else ImportOptions()
        )
        import_id = new_id()
        path = storage.path_for(import_id)
        try:
            size = await _store(upload, path, storage.max_bytes)
            return await service.create_upload(
                uow,
                owner,
                storage,
                import_id=import_id,
                options=options,
                file_name=upload.filename or "upload.csv",
                file_bytes=size,
            )
        except BaseException:
            path.unlink(missing_ok=True)
            raise


async def _store(upload: UploadFile, path: Path, max_bytes: int) -> int:
    size = 0
    with path.open("wb") as out:
        while chunk := await upload.read(_CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(f"The file is larger than the limit of {max_bytes} bytes.")
            await asyncio.to_thread(out.write, chunk)
    return size


ModelT = TypeVar("ModelT", ImportCreate, ImportOptions)


def _parsed(model: type[ModelT], raw: bytes | str, prefix: tuple[str, ...]) -> ModelT:
    """A JSON body (or form field) read as `model`, or the usual 422 with pointers."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as invalid:
        located = ("body", *prefix)
        raise RequestValidationError(
            [_relocated(detail, located) for detail in invalid.errors(include_url=False)]
        ) from None


def _relocated(detail: ErrorDetails, prefix: tuple[str, ...]) -> dict[str, Any]:
    return {**detail, "loc": (*prefix, *detail["loc"])}


@router.get("/v1/imports", operation_id="imports_list")
async def imports_list(
    uow: UnitOfWorkDep,
    principal: ImporterDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
) -> Page[ImportRead]:
    """The project's imports, oldest first."""
    rows = await service.list_imports(
        uow, principal.project_id, after_id=decode_id_cursor(cursor), limit=limit + 1
    )
    items, next_cursor = split_page(rows, limit, lambda r: [str(r.id)])
    return Page(items=[import_read(r) for r in items], next_cursor=next_cursor)


@router.get("/v1/imports/{import_id}", operation_id="imports_get")
async def imports_get(
    import_id: uuid.UUID, uow: UnitOfWorkDep, principal: ImporterDep
) -> ImportRead:
    """Status, counts, progress and timing of an import."""
    return import_read(await service.get_import(uow, principal.project_id, import_id))


@router.get(
    "/v1/imports/{import_id}/errors",
    operation_id="imports_get_errors",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def imports_get_errors(
    import_id: uuid.UUID, uow: UnitOfWorkDep, principal: ImporterDep
) -> StreamingResponse:
    """The error report as CSV: row, column, message, original_row; one line per problem,
    in row order. Cells that a spreadsheet would run as formulas are prefixed with '."""
    lines = await service.error_report(uow, principal.project_id, import_id)
    return StreamingResponse(
        report_csv(lines),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )


@router.post(
    "/v1/imports/{import_id}/cancel",
    responses=problem_responses(409),
    operation_id="imports_cancel",
)
async def imports_cancel(
    import_id: uuid.UUID, uow: UnitOfWorkDep, principal: ImporterDep
) -> ImportRead:
    """Stop an import after the batch being applied; what was committed stays. 409 if it
    has already ended."""
    return import_read(await service.cancel_import(uow, principal.project_id, import_id))


@router.post(
    "/v1/import-schedules",
    status_code=status.HTTP_201_CREATED,
    operation_id="imports_create_schedule",
)
async def imports_create_schedule(
    body: ScheduleCreate,
    response: Response,
    uow: UnitOfWorkDep,
    principal: ImporterDep,
    settings: SettingsDep,
) -> ScheduleRead:
    """Poll an FTP directory every `every_minutes`; each new file is imported once."""
    schedule = await schedules.create_schedule(
        uow, ImportOwner.of_key(principal), Storage.from_settings(settings), body
    )
    response.headers["Location"] = f"/v1/import-schedules/{schedule.id}"
    return schedule_read(schedule)


@router.get("/v1/import-schedules", operation_id="imports_list_schedules")
async def imports_list_schedules(
    uow: UnitOfWorkDep,
    principal: ImporterDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
) -> Page[ScheduleRead]:
    rows = await schedules.list_schedules(
        uow, principal.project_id, after_id=decode_id_cursor(cursor), limit=limit + 1
    )
    items, next_cursor = split_page(rows, limit, lambda r: [str(r.id)])
    return Page(items=[schedule_read(r) for r in items], next_cursor=next_cursor)


@router.get("/v1/import-schedules/{schedule_id}", operation_id="imports_get_schedule")
async def imports_get_schedule(
    schedule_id: uuid.UUID, uow: UnitOfWorkDep, principal: ImporterDep
) -> ScheduleRead:
    return schedule_read(await schedules.get_schedule(uow, principal.project_id, schedule_id))


@router.delete(
    "/v1/import-schedules/{schedule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="imports_delete_schedule",
)
async def imports_delete_schedule(
    schedule_id: uuid.UUID, uow: UnitOfWorkDep, principal: ImporterDep
) -> None:
    """Stop polling; imports already started go on."""
    await schedules.delete_schedule(uow, principal.project_id, schedule_id)
