"""What the Reporting API's versioned resources share: lifecycle stamps, retirement reasons, and
the check that a change names the current version of something that may still change.

Registry entities and report definitions both move draft -> active -> deprecated -> archived,
carry an ETag per version and refuse a stale If-Match with StaleVersion (412).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

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


def etag(object_id: str, version: int) -> str:
    return f'"{object_id}.v{version}"'


def ensure_changeable(what: str, *, status: str, version: int, current_etag: str, if_match: str | None) -> None:
    """Refuse a change based on a stale version (StaleVersion) or to an archived object (Conflict)."""
    if if_match is not None and if_match.strip() not in (current_etag, "*"):
        raise StaleVersion(f"{what} is at version {version}; {if_match} is stale")
    if status == "archived":
        raise Conflict(f"{what} is archived and cannot change")
