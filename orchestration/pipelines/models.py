"""What a pipeline is: its members, its destination, its versions and lifecycle, and its runs.

A member is a report definition id (`rdef_...`) or a template key. The destination is one
delivery recipient (delivery/recipients.py): the outbox, its idempotency keys, the e-mail
allow-list, the webhook signing secrets and Gate C apply to pipelines as to schedules.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestration.catalog import definition_template
from orchestration.delivery.recipients import Recipient, RecipientError
from orchestration.governance.versioned import Version, VersionedObject

PipelineStatus = Literal["draft", "active", "paused", "archived"]
BatchStatus = Literal["running", "completed", "partially_failed", "failed"]
MemberState = Literal["submitted", "published", "failed"]
DeliveryState = Literal["none", "delivered", "refused", "failed"]
MEMBER = r"^(rdef_[0-9a-f]{16}|[a-z][a-z0-9_]{0,62})$"
MAX_MEMBERS = 20


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Destination(_Frozen):
    """Where every file of a batch goes: one channel and address. `principal_id` is who the
    download links in a webhook or e-mail are for (default: the principal who runs the batch)."""

    type: Literal["bucket", "webhook", "email"]
    address: str = Field(min_length=3, max_length=2000,
                         description="s3://bucket/prefix/, an https:// URL, or an e-mail address")
    principal_id: str | None = Field(default=None, max_length=200)
    endpoint_url: str | None = Field(default=None, max_length=2000, description="bucket only: an S3-compatible endpoint")

    @model_validator(mode="after")
    def _is_a_recipient(self) -> Destination:
        if self.endpoint_url and self.type != "bucket":
            raise ValueError("endpoint_url is for a bucket destination only")
        try:
            self.recipient(None)
        except RecipientError as exc:
            raise ValueError(str(exc)) from None
        return self

    def recipient(self, default_principal: str | None) -> Recipient:
        config = {"endpoint_url": self.endpoint_url} if self.endpoint_url else {}
        return Recipient(self.type, self.address, self.principal_id or default_principal, False, config)


class PipelineSpec(_Frozen):
    """One version of a pipeline: what it exports, in which format, to where."""

    pipeline_name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    members: tuple[str, ...] = Field(min_length=1, max_length=MAX_MEMBERS,
                                     description="report definition ids (rdef_...) and/or template keys")
    destination: Destination
    format: Literal["csv", "xlsx", "json"] = "csv"

    @model_validator(mode="after")
    def _members(self) -> PipelineSpec:
        bad = [m for m in self.members if not re.match(MEMBER, m)]
        if bad:
            raise ValueError(f"members must be report definition ids (rdef_...) or template keys, not {bad}")
        if len(set(self.members)) != len(self.members):
            raise ValueError("a member is listed twice")
        return self


class PipelineCreate(PipelineSpec):
    tenant_id: str | None = Field(default=None, description="needed only when the caller belongs to several tenants")


class PipelineUpdate(_Frozen):
    pipeline_name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    members: tuple[str, ...] | None = Field(default=None, min_length=1, max_length=MAX_MEMBERS)
    destination: Destination | None = None
    format: Literal["csv", "xlsx", "json"] | None = None


def is_definition(member: str) -> bool:
    return definition_template.is_definition_key(member)


class Pipeline(VersionedObject):
    id_field: ClassVar[str] = "pipeline_id"
    pipeline_id: str
    status: PipelineStatus
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    activated_at: dt.datetime | None = None
    paused_at: dt.datetime | None = None
    archived_at: dt.datetime | None = None
    reason_code: str | None = None
    reason_text: str | None = None


class PipelineVersion(Version):
    pipeline_id: str
    spec: PipelineSpec


class MemberRun(_Frozen):
    """One member of a batch: its report run, how it ended, and whether its files went out."""

    position: int
    member: str
    run_id: str | None
    state: MemberState
    error: str | None = None
    delivery: DeliveryState = "none"
    delivery_detail: dict = Field(default_factory=dict)

    @property
    def settled(self) -> bool:
        return self.state == "failed" or (self.state == "published" and self.delivery != "none")


class PipelineRun(_Frozen):
    pipeline_run_id: str
    pipeline_id: str
    version: int
    tenant_id: str
    requester: str
    trigger: str
    status: BatchStatus
    correlation_id: str | None
    created_at: dt.datetime
    settled_at: dt.datetime | None = None
    members: tuple[MemberRun, ...] = ()

    @property
    def failed(self) -> tuple[MemberRun, ...]:
        """Members that did not publish, or published and were not delivered."""
        return tuple(m for m in self.members if m.state == "failed" or m.delivery in ("refused", "failed"))
