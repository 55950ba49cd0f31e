"""Where everything lives: one settings object, read from the environment.

`REPORTS_DATABASE_URL` selects an external PostgreSQL server; without it an embedded server
(pgserver) keeps its data under `$NEXUS_HOME/pgdata`. `NEXUS_HOME` defaults to `.nexus/` in
the repository, so a fresh clone needs nothing configured.

`REPORTS_S3_BUCKET` (with `REPORTS_S3_ENDPOINT` for any S3-compatible server, and optionally
`REPORTS_S3_PREFIX`) publishes artifacts to S3 instead of the local folder `$NEXUS_HOME/artifacts`;
credentials come from the usual AWS environment variables.

`REPORTS_DAGSTER_DATABASE` names the database of Dagster's storage on the warehouse's server
(default: the warehouse database's name with `_dagster`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
TEMPLATES_DIR = REPO_ROOT / "templates"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"

EMBEDDED_DATABASE = "nexus"


@dataclass(frozen=True)
class Settings:
    home: Path
    external_database_url: str | None
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_prefix: str = ""
    # Files at least this big are uploaded in parts (multipart upload, aborted on failure).
    s3_multipart_threshold: int = 8 * 1024 * 1024
    dagster_database: str | None = None

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def embedded(self) -> bool:
        return self.external_database_url is None


def get_settings() -> Settings:
    home = Path(os.environ.get("NEXUS_HOME") or REPO_ROOT / ".nexus").resolve()
    url = os.environ.get("REPORTS_DATABASE_URL") or None
    return Settings(
        home=home,
        external_database_url=url,
        s3_endpoint=os.environ.get("REPORTS_S3_ENDPOINT") or None,
        s3_bucket=os.environ.get("REPORTS_S3_BUCKET") or None,
        s3_prefix=(os.environ.get("REPORTS_S3_PREFIX") or "").strip("/"),
        s3_multipart_threshold=int(os.environ.get("REPORTS_S3_MULTIPART_THRESHOLD") or 8 * 1024 * 1024),
        dagster_database=os.environ.get("REPORTS_DAGSTER_DATABASE") or None,
    )
