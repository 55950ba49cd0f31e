"""What the Reporting API's versioned resources share: lifecycle stamps, retirement reasons, and
the check that a change names the current version of something that may still change.

Registry entities, report definitions and chart definitions move draft -> active -> deprecated ->
archived (export pipelines pause instead of deprecating), carry an ETag per version and refuse a
stale If-Match with StaleVersion (412).
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestration.errors import Conflict, StaleVersion

Status = Literal["draft", "active", "deprecated", "archived"]
ReasonCode = Literal["SUPERSEDED", "DATA_QUALITY", "POLICY_CHANGE", "SECURITY", "NO_LONGER_NEEDED", "OTHER"]


class Reason(BaseModel):
    """A code from a fixed list (each subclass declares its own `reason_code` Literal) and a text,
    required when the code is OTHER."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason_code: str
    reason_text: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _text_for_other(self) -> Reason:
        if self.reason_code == "OTHER" and not (self.reason_text or "").strip():
            raise ValueError("reason_text is required when reason_code is OTHER")
        return self

    def logged(self) -> str:
        return self.reason_code + (f": {self.reason_text}" if self.reason_text else "")


class Retirement(Reason):
    """Why something is deprecated or archived."""

    reason_code: ReasonCode


class LifecycleStamps(BaseModel):
    """Who made it and when each lifecycle step happened; the reason of the last retirement."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    activated_at: dt.datetime | None = None
    deprecated_at: dt.datetime | None = None
    archived_at: dt.datetime | None = None
    reason_code: ReasonCode | None = None
    reason_text: str | None = None


class VersionedObject(BaseModel):
    """The header of an object whose content lives in numbered versions (report definitions, chart
    definitions, export pipelines): its tenant, its status, the newest version (what a change is
    based on, its ETag) and the version in use (None until an approver activates one). Each
    subclass names its id field in `id_field` and narrows `status`; governance/versioned_store.py
    reads and writes the rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id_field: ClassVar[str]
    tenant_id: str
    status: str
    current_version: int
    active_version: int | None

    @property
    def object_id(self) -> str:
        return getattr(self, self.id_field)

    @property
    def etag(self) -> str:
        return etag(self.object_id, self.current_version)


class Version(BaseModel):
    """One immutable version of such an object: its number, who wrote it and who activated it
    (subclasses add the id field, the spec and what was checked when it was saved)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    created_by: str
    created_at: dt.datetime
    activated_by: str | None = None
    activated_at: dt.datetime | None = None


def etag(object_id: str, version: int) -> str:
    return f'"{object_id}.v{version}"'


def ensure_changeable(what: str, *, status: str, version: int, current_etag: str, if_match: str | None) -> None:
    """Refuse a change based on a stale version (StaleVersion) or to an archived object (Conflict)."""
    if if_match is not None and if_match.strip() not in (current_etag, "*"):
        raise StaleVersion(f"{what} is at version {version}; {if_match} is stale")
    if status == "archived":
        raise Conflict(f"{what} is archived and cannot change")
