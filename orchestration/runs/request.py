"""A report run request: what a run is asked to do, validated before anything runs.

The request is hashed (the input hash) from its canonical JSON, so the same request always has
the same hash; while a run of that hash is active, asking again returns that run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestration.access.tenants import PLATFORM
from orchestration.catalog.templates import Template
from orchestration.db.report_context import ReaderScope
from orchestration.db.warehouse import WarehouseError, validate_tenant_id
from orchestration.runs.periods import RequestError, check_window, period_window, utc_today

TRIGGERS = ("manual", "schedule", "correction", "retry")


@dataclass(frozen=True)
class ReportRequest:
    template_key: str
    template_version: int
    tenant_id: str
    window_start: dt.date
    window_end: dt.date
    requester: str
    trigger: str = "manual"
    period_key: str | None = None
    formats: tuple[str, ...] = ()
    filters: dict[str, Any] = field(default_factory=dict)
    # The row scope of a report definition's run (None: the whole tenant, as for templates):
    # verticals and regions it may read, and, for root only, the logged reason to include
    # consent-withdrawn subjects. Part of the input hash: they decide the report's content.
    verticals: tuple[str, ...] | None = None
    geo_scopes: tuple[str, ...] | None = None
    include_withdrawn: str | None = None

    @classmethod
    def for_period(cls, template: Template, tenant_id: str, period_key: str, **kwargs: Any) -> ReportRequest:
        key, start, end = period_window(template.cadence, period_key)
        kwargs.setdefault("formats", template.formats)
        return cls(template_key=template.key, template_version=template.version, tenant_id=tenant_id,
                   window_start=start, window_end=end, period_key=key, **kwargs)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReportRequest:
        """The request as recorded on its run (`as_json`), back as a request."""
        data = dict(data)
        data["window_start"] = dt.date.fromisoformat(data["window_start"])
        data["window_end"] = dt.date.fromisoformat(data["window_end"])
        data["formats"] = tuple(data["formats"])
        for name in ("verticals", "geo_scopes"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        return cls(**data)

    def validate(self, template: Template, *, today: dt.date | None = None) -> ReportRequest:
        if (self.template_key, self.template_version) != (template.key, template.version):
            raise RequestError(f"request is for {self.template_key} v{self.template_version}, not {template.label}")
        if not self.tenant_id or not str(self.tenant_id).strip():
            raise RequestError("a run needs a tenant: name exactly one")
        if isinstance(self.tenant_id, (list, tuple, set)) or any(c in str(self.tenant_id) for c in ",; "):
            raise RequestError(f"a run is for exactly one tenant; got {self.tenant_id!r}")
        try:
            validate_tenant_id(self.tenant_id)
        except WarehouseError as exc:
            raise RequestError(str(exc)) from exc
        self._check_partition(template)
        check_window(self.window_start, self.window_end, today=today or utc_today(),
                     max_days=template.max_window_days)
        unknown = sorted(set(self.formats) - set(template.formats))
        if not self.formats or unknown:
            raise RequestError(
                f"formats {list(self.formats)} not offered by {template.label} (offers {list(template.formats)})"
            )
        self._check_filters(template)
        if self.trigger not in TRIGGERS:
            raise RequestError(f"unknown trigger {self.trigger!r}; expected one of {TRIGGERS}")
        if not self.requester.strip():
            raise RequestError("a run needs a requester")
        return self

    def _check_partition(self, template: Template) -> None:
        """A platform-wide template runs only in the platform partition, and nothing else does."""
        if template.scope == "platform" and self.tenant_id != PLATFORM:
            raise RequestError(f"{template.label} is platform-wide: run it for the platform partition "
                               f"{PLATFORM!r}, not for tenant {self.tenant_id!r}")
        if template.scope == "tenant" and self.tenant_id == PLATFORM:
            raise RequestError(f"the platform partition {PLATFORM!r} is for platform-wide templates; "
                               f"{template.label} runs for one tenant")

    def _check_filters(self, template: Template) -> None:
        declared = {f.name: f for f in template.filters}
        unknown = sorted(set(self.filters) - set(declared))
        if unknown:
            offered = ", ".join(declared) or "none"
            raise RequestError(f"{template.label} has no filter {', '.join(unknown)} (its filters: {offered})")
        for name, value in self.filters.items():
            spec = declared[name]
            if spec.type == "enum" and value not in spec.values:
                raise RequestError(f"filter {name}={value!r}: expected one of {', '.join(spec.values)}")
            if spec.type == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
                raise RequestError(f"filter {name}={value!r}: expected an integer")
            if spec.type == "date":
                try:
                    dt.date.fromisoformat(str(value))
                except ValueError:
                    raise RequestError(f"filter {name}={value!r}: expected a date YYYY-MM-DD") from None
            if spec.type == "text" and not isinstance(value, str):
                raise RequestError(f"filter {name}={value!r}: expected text")
            if spec.type == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise RequestError(f"filter {name}={value!r}: expected a number")
            if spec.type == "boolean" and not isinstance(value, bool):
                raise RequestError(f"filter {name}={value!r}: expected true or false")

    def reader_scope(self) -> ReaderScope | None:
        """The row scope the report queries run under; None: the tenant's rows (template runs)."""
        if self.verticals is None and self.geo_scopes is None and self.include_withdrawn is None:
            return None
        return ReaderScope(verticals=self.verticals, geo_scopes=self.geo_scopes,
                           include_withdrawn=self.include_withdrawn is not None)

    def query_params(self, template: Template) -> dict[str, Any]:
        """The window and every declared filter (NULL when not given) for the section SQL."""
        return {"window_start": self.window_start, "window_end": self.window_end,
                **{f.name: self.filters.get(f.name) for f in template.filters}}

    def canonical(self) -> dict[str, Any]:
        """What the input hash covers: everything that decides the report's content and audience."""
        return {
            "template_key": self.template_key,
            "template_version": self.template_version,
            "tenant_id": self.tenant_id,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "filters": self.filters,
            "formats": sorted(self.formats),
            "requester": self.requester,
            # only when set, so that a template run's hash is what it always was
            **{k: v for k, v in (("verticals", self.verticals), ("geo_scopes", self.geo_scopes),
                                 ("include_withdrawn", self.include_withdrawn)) if v is not None},
        }

    @property
    def input_hash(self) -> str:
        canonical = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["window_start"] = self.window_start.isoformat()
        data["window_end"] = self.window_end.isoformat()
        data["formats"] = list(self.formats)
        for name in ("verticals", "geo_scopes"):
            if data[name] is not None:
                data[name] = list(data[name])
        return data
