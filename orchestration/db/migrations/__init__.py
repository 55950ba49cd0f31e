"""Control-schema migrations (Alembic), applied by `warehouse.ensure_database`.

The caller passes the database URL: the connection layer depends on the migrations, never the
other way round (migrations know Alembic, not how a URL is made).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def _config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("version_locations", str(HERE / "versions"))
    # '%' is ConfigParser interpolation syntax; socket paths are URL-quoted.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head() -> str:
    """The newest revision, from the file names alone (each is `NNNN_<what>.py` with revision
    "NNNN", a test holds Alembic to it): a command that starts checks the database is there
    without importing Alembic and every migration script."""
    return max(p.name.split("_", 1)[0] for p in (HERE / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the control schema of the database at `url` (an explicit postgresql+psycopg2 URL)."""
    from alembic import command

    command.upgrade(_config(url), revision)
