"""`cdp`: serve the API, migrate the database, manage projects and keys, write the spec."""

import asyncio
import json
import os
import signal
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.activity.partitions import ensure_monthly_partitions
from app.core import migrations
from app.core.auth import Scope
from app.core.db import UnitOfWork, async_database_url, create_database
from app.core.embedded_postgres import start_embedded_postgres
from app.core.errors import DomainError
from app.core.pagination import MAX_PAGE_LIMIT
from app.imports.command import import_file, write_report
from app.imports.models import Import
from app.imports.presenters import import_read
from app.imports.schemas import ImportOptions
from app.imports.service import Storage
from app.loyalty import settlement as loyalty_settlement
from app.projects import service as projects_service
from app.projects.schemas import ApiKeyRead, ProjectRead
from app.projects.service import IssuedKey
from app.settings import Settings

cli = typer.Typer(help="The CDP API service.", no_args_is_help=True, add_completion=False)
projects_cli = typer.Typer(help="Manage projects (tenants).", no_args_is_help=True)
keys_cli = typer.Typer(help="Manage API keys.", no_args_is_help=True)
cli.add_typer(projects_cli, name="projects")
cli.add_typer(keys_cli, name="keys")
activity_cli = typer.Typer(help="Maintain the actions table.", no_args_is_help=True)
cli.add_typer(activity_cli, name="activity")
loyalty_cli = typer.Typer(help="Points housekeeping.", no_args_is_help=True)
cli.add_typer(loyalty_cli, name="loyalty")
console = Console()
ResultT = TypeVar("ResultT")

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
DEFAULT_OPENAPI_PATH = Path("openapi/openapi.json")


def _database_url(settings: Settings) -> str:
    """CDP_DATABASE_URL, or the embedded server's (started on first use)."""
    if settings.database_url is not None:
        return settings.database_url
    return start_embedded_postgres(settings.data_dir)


def _migration_url(settings: Settings, service_url: str) -> str:
    """Migrations run as the schema's owner: CDP_MIGRATION_DATABASE_URL, else the service's."""
    return settings.migration_database_url or service_url


def _with_database(
    use_case: Callable[[UnitOfWork], Awaitable[ResultT]],
    *,
    settings: Settings | None = None,
    as_owner: bool = False,
) -> ResultT:
    """Run one use case against a migrated database, reporting domain errors as CLI errors."""
    settings = settings or Settings()
    url = _database_url(settings)
    migrations.upgrade(_migration_url(settings, url))
    if as_owner:
        url = _migration_url(settings, url)

    async def run() -> ResultT:
        database = create_database(async_database_url(url), settings, as_owner=as_owner)
        try:
            return await use_case(UnitOfWork(database.sessions))
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except DomainError as error:
        console.print(f"[red]error:[/red] {error.detail}")
        for problem in error.errors:
            console.print(f"  {problem.pointer or '/'}: {problem.message}")
        raise typer.Exit(code=1) from error


def _print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (one per core).")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Migrate the database, then serve the API (on a fresh embedded database, create a key)."""
    settings = Settings()
    embedded = settings.database_url is None
    url = _database_url(settings)
    # Workers and the reloader are new processes: they must reach the same server.
    os.environ["CDP_DATABASE_URL"] = url
    migrations.upgrade(_migration_url(settings, url))
    if embedded:
        issued = _with_database(projects_service.bootstrap_default_project, settings=settings)
        if issued is not None:
            _announce_bootstrap_key(issued)
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="cdp-metrics-")
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the previous handler.
    # The default handler would kill the process before atexit stops the embedded server.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_worker_healthcheck=settings.worker_healthcheck_seconds,
    )


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _announce_bootstrap_key(issued: IssuedKey) -> None:
    console.print(
        Panel(
            f"Project [bold]default[/bold] created. Its admin API key (shown only now):\n\n"
            f"[bold green]{issued.token}[/bold green]\n\n"
            "Use it as `Authorization: Bearer <key>`; create narrower keys with "
            "`cdp keys create`.",
            title="First start",
        )
    )


@cli.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply database migrations up to REVISION (default: the latest)."""
    settings = Settings()
    migrations.upgrade(_migration_url(settings, _database_url(settings)), revision)
    console.print(f"database migrated to {revision}")


@cli.command()
def openapi(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File to write; `-` for standard output.")
    ] = DEFAULT_OPENAPI_PATH,
) -> None:
    """Write the OpenAPI spec of the API (the committed copy lives in openapi/openapi.json)."""
    from app.main import create_app

    spec = render_openapi(create_app(Settings(log_level="WARNING")).openapi())
    if str(output) == "-":
        typer.echo(spec, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(spec)
    console.print(f"wrote {output}")


def render_openapi(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


@projects_cli.command("create")
def projects_create(
    name: Annotated[str, typer.Argument(help="Project name: lower-case letters, digits, - and _.")],
    region: Annotated[
        str | None, typer.Option(help="Default phone region (ISO 3166 alpha-2, e.g. DE).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a project and print its first admin key (shown only once)."""
    project, issued = _with_database(
        lambda uow: projects_service.create_project(uow, name=name, default_phone_region=region)
    )
    if as_json:
        _print_json(
            {
                "project": ProjectRead.model_validate(project).model_dump(mode="json"),
                "admin_key": _key_json(issued),
            }
        )
        return
    console.print(f"project [bold]{project.name}[/bold] created ({project.id})")
    console.print(f"admin key (shown only now): [bold green]{issued.token}[/bold green]")


@projects_cli.command("list")
def projects_list(as_json: JsonOption = False) -> None:
    """List every project (the CLI is the operator: it sees all tenants)."""
    projects = _with_database(
        lambda uow: projects_service.list_projects(
            uow, after_id=None, limit=MAX_PAGE_LIMIT, visible_to=None
        )
    )
    rows = [ProjectRead.model_validate(p).model_dump(mode="json") for p in projects]
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "name", "phone region", "created")
    for row in rows:
        table.add_row(row["id"], row["name"], row["default_phone_region"] or "", row["created_at"])
    console.print(table)


@keys_cli.command("create")
def keys_create(
    project: Annotated[str, typer.Option(help="Project name.")],
    scope: Annotated[
        list[Scope] | None, typer.Option(help="A scope; repeat for several (secret keys).")
    ] = None,
    publishable: Annotated[
        bool, typer.Option(help="An app key without scopes that reaches only /v1/me.")
    ] = False,
    name: Annotated[str | None, typer.Option(help="Key name (default: derived).")] = None,
    touchpoint: Annotated[
        str | None, typer.Option(help="Touchpoint recorded in changelogs (default: name).")
    ] = None,
    allowed_touchpoint: Annotated[
        list[str] | None,
        typer.Option(help="Another touchpoint the key may name in X-Touchpoint; repeatable."),
    ] = None,
    expires_at: Annotated[
        datetime | None, typer.Option(help="Refuse the key after this instant.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key and print it (shown only once)."""
    if publishable == bool(scope):
        raise typer.BadParameter("give --scope for a secret key, and none with --publishable")
    key_name = name or f"cli-{datetime.now().strftime('%Y%m%d%H%M%S')}"

    async def create(uow: UnitOfWork) -> IssuedKey:
        found = await projects_service.get_project_by_name(uow, project)
        return await projects_service.create_api_key(
            uow,
            found.id,
            name=key_name,
            kind="publishable" if publishable else "secret",
            scopes=scope or [],
            touchpoint=touchpoint,
            allowed_touchpoints=allowed_touchpoint,
            expires_at=expires_at,
        )

    issued = _with_database(create)
    if as_json:
        _print_json(_key_json(issued))
        return
    console.print(f"key [bold]{issued.api_key.name}[/bold] created ({issued.api_key.id})")
    console.print(f"[bold green]{issued.token}[/bold green]  (shown only now)")


def _key_json(issued: IssuedKey) -> dict[str, Any]:
    return {
        **ApiKeyRead.model_validate(issued.api_key).model_dump(mode="json"),
        "key": issued.token,
    }


@keys_cli.command("list")
def keys_list(
    project: Annotated[str, typer.Option(help="Project name.")],
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List a project's API keys (never their secrets)."""

    async def list_keys(uow: UnitOfWork) -> list[ApiKeyRead]:
        found = await projects_service.get_project_by_name(uow, project)
        keys = await projects_service.list_api_keys(
            uow, found.id, after_id=None, limit=MAX_PAGE_LIMIT, include_revoked=include_revoked
        )
        return [ApiKeyRead.model_validate(k) for k in keys]

    keys = _with_database(list_keys)
    if as_json:
        _print_json([k.model_dump(mode="json") for k in keys])
        return
    table = Table("id", "name", "prefix", "scopes", "touchpoint", "last used", "revoked")
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.prefix,
            ",".join(key.scopes),
            key.touchpoint,
            str(key.last_used_at or ""),
            str(key.revoked_at or ""),
        )
    console.print(table)


@keys_cli.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Id of the key (see `cdp keys list`).")],
    project: Annotated[str, typer.Option(help="Project name.")],
    as_json: JsonOption = False,
) -> None:
    """Revoke an API key at once."""
    import uuid

    try:
        parsed_id = uuid.UUID(key_id)
    except ValueError as error:
        raise typer.BadParameter(f"not a key id: {key_id}") from error

    async def revoke(uow: UnitOfWork) -> ApiKeyRead:
        found = await projects_service.get_project_by_name(uow, project)
        key = await projects_service.revoke_api_key(uow, found.id, parsed_id)
        return ApiKeyRead.model_validate(key)

    key = _with_database(revoke)
    if as_json:
        _print_json(key.model_dump(mode="json"))
        return
    console.print(f"key {key.name} ({key.id}) revoked at {key.revoked_at}")


@activity_cli.command("partitions")
def activity_partitions(
    months_ahead: Annotated[
        int, typer.Option(min=0, max=120, help="Months after this one to have partitions for.")
    ] = 12,
    as_json: JsonOption = False,
) -> None:
    """Create the missing monthly partitions of actions (rows waiting in DEFAULT move in)."""
    # Partitions are tables: only the schema's owner may create and attach them.
    created = _with_database(
        lambda uow: ensure_monthly_partitions(uow, months_ahead=months_ahead), as_owner=True
    )
    if as_json:
        _print_json(
            [
                {"partition": c.name, "month": c.month.isoformat(), "rows_moved": c.rows_moved}
                for c in created
            ]
        )
        return
    if not created:
        console.print("no partition was missing")
        return
    table = Table("partition", "month", "rows moved")
    for c in created:
        table.add_row(c.name, c.month.isoformat(), str(c.rows_moved))
    console.print(table)


@loyalty_cli.command("expire")
def loyalty_expire(
    now: Annotated[
        datetime | None,
        typer.Option(help="Settle as of this instant (default: now); for tests and backfills."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Release pending points that became available and expire points past their expiry."""
    instant = now.astimezone(UTC) if now is not None else datetime.now(UTC)
    settled = _with_database(lambda uow: loyalty_settlement.settle_due(uow, now=instant))
    if as_json:
        _print_json({"settled_lots": settled, "as_of": instant.isoformat()})
        return
    console.print(f"settled {settled} lot(s) as of {instant.isoformat()}")


class OnConflictChoice(StrEnum):
    reject = "reject"
    merge = "merge"
    reassign = "reassign"


@cli.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file.")
    ],
    project: Annotated[str, typer.Option(help="The project's name.")] = "default",
    on_conflict: Annotated[
        OnConflictChoice, typer.Option(help="Rows matching different customers.")
    ] = OnConflictChoice.reject,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="HEADER=TARGET, repeatable (see docs/imports.md)."),
    ] = None,
    delimiter: Annotated[str, typer.Option(help="One of , ; | or \\t.")] = ",",
    encoding: Annotated[str, typer.Option(help="utf-8, utf-16, latin-1 or cp1252.")] = "utf-8",
    list_separator: Annotated[str, typer.Option(help="Between discount cards.")] = "|",
    region: Annotated[
        str | None, typer.Option(help="Phone region for numbers without a country code.")
    ] = None,
    touchpoint: Annotated[str | None, typer.Option(help="Recorded in the changelogs.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, write nothing.")] = False,
    errors: Annotated[
        Path | None, typer.Option(help="Write the error report (CSV) to this file.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import customers from a CSV file into a project, showing progress; exit code 1 if
    the import failed."""
    try:
        options = ImportOptions.model_validate(
            {
                "mapping": _mapping(map_ or []),
                "on_conflict": on_conflict.value,
                "delimiter": "\t" if delimiter == "\\t" else delimiter,
                "encoding": encoding,
                "list_separator": list_separator,
                "default_phone_region": region,
                "touchpoint": touchpoint,
                "dry_run": dry_run,
            }
        )
    except ValidationError as invalid:
        for error in invalid.errors(include_url=False):
            console.print(f"[red]error:[/red] {'.'.join(map(str, error['loc']))}: {error['msg']}")
        raise typer.Exit(code=2) from None
    settings = Settings()
    storage = Storage.from_settings(settings)

    async def run(uow: UnitOfWork) -> Import:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
        ) as bar:
            task = bar.add_task("queued", total=1.0)

            def show(row: Import) -> None:
                described = f"{row.status}: {row.rows_read} rows, {row.failed} failed"
                bar.update(task, completed=import_read(row).progress, description=described)

            row = await import_file(
                uow, storage, project_name=project, path=file, options=options, on_progress=show
            )
        if errors is not None:
            await write_report(uow, row, errors)
        return row

    row = _with_database(run, settings=settings)
    shown = import_read(row)
    if as_json:
        _print_json(shown.model_dump(mode="json"))
    else:
        table = Table("import", "status", *shown.counts.model_fields)
        table.add_row(
            str(row.id), row.status, *(str(v) for v in shown.counts.model_dump().values())
        )
        console.print(table)
        if row.error:
            console.print(f"[red]error:[/red] {row.error}")
    if row.status != "succeeded":
        raise typer.Exit(code=1)


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        header, separator, target = pair.partition("=")
        if not separator:
            raise typer.BadParameter(f"{pair!r} is not HEADER=TARGET", param_hint="--map")
        mapping[header] = target
    return mapping


def main() -> None:
    cli()
