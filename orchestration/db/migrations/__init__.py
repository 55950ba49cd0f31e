"""Control-schema migrations (Alembic), applied by `warehouse.ensure_database`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent


def _config(settings=None) -> Config:
    from ..warehouse import sqlalchemy_url

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("version_locations", str(HERE / "versions"))
    # '%' is ConfigParser interpolation syntax; socket paths are URL-quoted.
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(settings=settings).replace("%", "%%"))
    return cfg


def upgrade(settings=None, revision: str = "head") -> None:
    command.upgrade(_config(settings), revision)
