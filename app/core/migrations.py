"""Alembic, driven from code: `cdp migrate`, `cdp serve` and the tests all come through here."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

# A source checkout (editable install) keeps alembic.ini beside the package; the Docker
# image keeps it in the working directory.
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def _alembic_ini() -> Path:
    for root in (_SOURCE_ROOT, Path.cwd()):
        if (root / "alembic.ini").is_file():
            return root / "alembic.ini"
    raise FileNotFoundError("alembic.ini not found beside the app package or in the current dir")


def alembic_config(database_url: str | None = None) -> Config:
    ini = _alembic_ini()
    config = Config(str(ini))
    config.set_main_option("script_location", str(ini.parent / "migrations"))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Synchronous: Alembic's env runs its own event loop (from async code: asyncio.to_thread)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the migrations folder has no revision")
    return head
