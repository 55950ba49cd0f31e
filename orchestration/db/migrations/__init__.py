"""Control-schema migrations (Alembic), applied by `warehouse.ensure_database`.

The caller passes the database URL: the connection layer depends on the migrations, never the
other way round (migrations know Alembic, not how a URL is made).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent


def _config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("version_locations", str(HERE / "versions"))
    # '%' is ConfigParser interpolation syntax; socket paths are URL-quoted.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the control schema of the database at `url` (an explicit postgresql+psycopg2 URL)."""
    command.upgrade(_config(url), revision)
