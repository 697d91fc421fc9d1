"""Import use cases called by the API and the CLI: create, read, cancel, the error report.

Running an import is `app/imports/runner.py` (a job); scheduled FTP pulls are
`app/imports/schedules.py`.
"""

import ipaddress
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal, ProjectSettings
from app.core.db import UnitOfWork
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.core.ids import new_id
from app.customers.inputs import load_rules
from app.imports import repository
from app.imports.columns import PlanError, plan_columns
from app.imports.csvfile import CsvFile, FileProblem
from app.imports.ftp import has_secret, is_public_address
from app.imports.models import CANCELLED, FINISHED, QUEUED, Import
from app.imports.schemas import FtpSource, ImportCreate, ImportOptions
from app.jobs import service as jobs
from app.settings import Settings

RUN_IMPORT = "imports.run"


@dataclass(frozen=True)
class Storage:
    """The service's import settings: where files wait for their worker (a directory every
    worker process can read), how big they may be, and which FTP hosts may be reached."""

    directory: Path
    max_bytes: int
    default_phone_region: str
    # Empty: any host. Entries are host names, or ".example.com" for a whole domain.
    ftp_allowed_hosts: tuple[str, ...] = ()
    # Whether any host may resolve to a loopback, private or link-local address.
    ftp_allow_private_addresses: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "Storage":
        return cls(
            directory=settings.import_dir or settings.data_dir / "imports",
            max_bytes=settings.import_max_bytes,
            default_phone_region=settings.default_phone_region,
            ftp_allowed_hosts=tuple(h.lower() for h in settings.import_ftp_allowed_hosts),
            ftp_allow_private_addresses=settings.import_ftp_allow_private_addresses,
        )

    def names_ftp_host(self, host: str) -> bool:
        """Whether the allowlist names this host (itself or its domain)."""
        host = host.lower().rstrip(".")
        return any(
            host == entry or (entry.startswith(".") and host.endswith(entry))
            for entry in self.ftp_allowed_hosts
        )

    def ftp_host_may_be_private(self, host: str) -> bool:
        """An operator who names a host in the allowlist has chosen to reach it wherever it
        is; any other host must be on the public internet unless all may be private."""
        return self.ftp_allow_private_addresses or self.names_ftp_host(host)

    def path_for(self, import_id: uuid.UUID) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / f"{import_id}.csv"


@dataclass(frozen=True)
class ImportOwner:
    """Who starts an import: an API key, or the operator at the command line."""

    project_id: uuid.UUID
    project: ProjectSettings
    initiator: str
    key_id: uuid.UUID | None
    may_act_as: Callable[[str], bool]

    @classmethod
    def of_key(cls, principal: Principal) -> "ImportOwner":
        return cls(
            project_id=principal.project_id,
            project=principal.project,
            initiator=principal.key_name,
            key_id=principal.key_id,
            may_act_as=principal.may_act_as,
        )


def touchpoint_for(owner: ImportOwner, options: ImportOptions, import_id: uuid.UUID) -> str:
    """The import's own touchpoint, or the one the options name if the key may act as it."""
    if options.touchpoint is None:
        return f"import:{import_id}"
    if not owner.may_act_as(options.touchpoint):
        raise InvalidInput(
            "The API key may not act as this touchpoint.",
            errors=[FieldError(pointer="/options/touchpoint", message="Not allowed for this key")],
        )
    return options.touchpoint


async def create_upload(
    uow: UnitOfWork,
    owner: ImportOwner,
    storage: Storage,
    *,
    import_id: uuid.UUID,
    options: ImportOptions,
    file_name: str,
    file_bytes: int,
    source_kind: str = "upload",
) -> Import:
    """Queue the import of a file already stored at `storage.path_for(import_id)`.

    Its header is checked against the project's fields now, so a file the import could
    never read is refused at once (422), and nothing is queued.
    """
    row = _new_import(owner, storage, import_id, options)
    row.source_kind = source_kind
    row.source_name = file_name[:1024]
    row.source = {}
    row.file_bytes = file_bytes
    async with uow:
        await _check_header(uow, owner, storage, import_id, options)
        return await queue_import(
            uow,
            row,
            options,
            phone_region=phone_region(owner, storage, options),
            storage=storage,
        )


async def create_ftp(
    uow: UnitOfWork, owner: ImportOwner, storage: Storage, body: ImportCreate
) -> Import:
    ftp = body.source.ftp
    check_password_ref(ftp, pointer="/source/ftp/password_ref")
    check_ftp_host(storage, ftp, pointer="/source/ftp/host")
    row = _new_import(owner, storage, new_id(), body.options)
    row.source_kind = "ftp"
    row.source_name = ftp.path
    row.source = public_source(ftp)
    row.ftp_secret = ftp.password
    async with uow:
        return await queue_import(
            uow,
            row,
            body.options,
            phone_region=phone_region(owner, storage, body.options),
            storage=storage,
        )


def _new_import(
    owner: ImportOwner, storage: Storage, import_id: uuid.UUID, options: ImportOptions
) -> Import:
    """The row every import starts as: whose, where its file goes, what it records as."""
    return Import(
        id=import_id,
        project_id=owner.project_id,
        initiator=owner.initiator,
        initiator_key_id=owner.key_id,
        file_path=str(storage.path_for(import_id)),
        touchpoint=touchpoint_for(owner, options, import_id),
    )


def public_source(ftp: FtpSource) -> dict[str, object]:
    """The FTP source as stored and shown: everything but the password."""
    return {"ftp": ftp.model_dump(exclude={"password"})}


def check_ftp_host(storage: Storage, ftp: FtpSource, *, pointer: str) -> None:
    """The service connects wherever an import names: without these checks, a key could
    make it probe hosts on the service's own network (SSRF). A name is resolved and
    checked again at each connection (app/imports/ftp.py); an address is refused here."""
    if storage.ftp_allowed_hosts and not storage.names_ftp_host(ftp.host):
        raise InvalidInput(
            "This FTP host is not among the hosts the service may reach.",
            errors=[
                FieldError(
                    pointer=pointer, message="Host not allowed (CDP_IMPORT_FTP_ALLOWED_HOSTS)"
                )
            ],
        )
    if _is_address(ftp.host) and not (
        is_public_address(ftp.host) or storage.ftp_host_may_be_private(ftp.host)
    ):
        raise InvalidInput(
            "This FTP host is not a public address.",
            errors=[
                FieldError(
                    pointer=pointer,
                    message="Loopback, private and link-local addresses are reached only when "
                    "named in CDP_IMPORT_FTP_ALLOWED_HOSTS or with "
                    "CDP_IMPORT_FTP_ALLOW_PRIVATE_ADDRESSES",
                )
            ],
        )


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_password_ref(ftp: FtpSource, *, pointer: str) -> None:
    if ftp.password_ref is not None and not has_secret(ftp.password_ref):
        raise InvalidInput(
            "No secret of that name is configured on the server.",
            errors=[FieldError(pointer=pointer, message="Unknown password_ref")],
        )


def phone_region(owner: ImportOwner, storage: Storage, options: ImportOptions) -> str:
    """Numbers without a country code: the options' region, else the project's, else the
    service's default."""
    return (
        options.default_phone_region
        or owner.project.default_phone_region
        or storage.default_phone_region
    )


async def queue_import(
    uow: UnitOfWork, row: Import, options: ImportOptions, *, phone_region: str, storage: Storage
) -> Import:
    """Store the import and its job in the caller's transaction: both or neither.

    The job carries the limits decided now, by the process that accepted the import: the
    largest file, and whether its FTP host may resolve to a private address."""
    row.status = QUEUED
    row.options = options.model_dump(mode="json")
    host = str(row.source["ftp"]["host"]) if row.source_kind == "ftp" else None
    job = await jobs.enqueue(
        uow.session,
        project_id=row.project_id,
        kind=RUN_IMPORT,
        payload={
            "import_id": str(row.id),
            "phone_region": phone_region,
            "max_bytes": storage.max_bytes,
            "ftp_allow_private": host is not None and storage.ftp_host_may_be_private(host),
        },
    )
    row.job_id = job.id
    await repository.add(uow.session, row)
    return row


async def _check_header(
    uow: UnitOfWork,
    owner: ImportOwner,
    storage: Storage,
    import_id: uuid.UUID,
    options: ImportOptions,
) -> None:
    rules = await load_rules(
        uow.session,
        owner.project_id,
        owner.project,
        default_phone_region=storage.default_phone_region,
    )
    try:
        with CsvFile(
            storage.path_for(import_id), encoding=options.encoding, delimiter=options.delimiter
        ) as source:
            plan_columns(source.header, options.mapping, rules.fields)
    except FileProblem as problem:
        raise InvalidInput(
            "The file cannot be read.", errors=[FieldError(pointer="/file", message=str(problem))]
        ) from None
    except PlanError as problem:
        raise InvalidInput(
            "The file's columns cannot be imported.",
            errors=[FieldError(pointer="/options/mapping", message=str(problem))],
        ) from None


async def get_import(uow: UnitOfWork, project_id: uuid.UUID, import_id: uuid.UUID) -> Import:
    async with uow.read_only() as session:
        found = await repository.get(session, project_id, import_id)
    if found is None:
        raise NotFound(f"Import {import_id} does not exist.")
    return found


async def list_imports(
    uow: UnitOfWork, project_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
) -> list[Import]:
    async with uow.read_only() as session:
        return await repository.page(session, project_id, after_id=after_id, limit=limit)


async def cancel_import(uow: UnitOfWork, project_id: uuid.UUID, import_id: uuid.UUID) -> Import:
    """Stop after the batch being applied: batches already committed stay applied."""
    async with uow:
        # Waits for the running batch to commit (it holds this row's lock).
        locked = await repository.lock(uow.session, import_id)
        if locked is None or locked.project_id != project_id:
            raise NotFound(f"Import {import_id} does not exist.")
        if locked.status in FINISHED:
            raise Conflict(f"The import has already ended ({locked.status}).")
        locked.status = CANCELLED
        locked.finished_at = datetime.now(UTC)
        return locked


async def error_report(
    uow: UnitOfWork, project_id: uuid.UUID, import_id: uuid.UUID
) -> AsyncIterator[tuple[int, str, str, str]]:
    """The report's lines in row order; 404 (raised before the first line) if unknown."""
    await get_import(uow, project_id, import_id)
    return _report_lines(uow, import_id)


async def _report_lines(
    uow: UnitOfWork, import_id: uuid.UUID
) -> AsyncIterator[tuple[int, str, str, str]]:
    async with uow:
        async for line in repository.report_lines(uow.session, import_id):
            yield line


async def erase_quotes(session: AsyncSession, project_id: uuid.UUID, values: list[str]) -> None:
    """The imports step of an erase: error-report rows quoting the customer's identifiers
    (a refused or repeated row of a file) lose their original text."""
    await repository.redact_report_lines(session, project_id, values)
