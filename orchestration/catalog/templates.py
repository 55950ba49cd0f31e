"""The template catalog: report templates as versioned, validated files.

A template is data, not code: sections (each a query on dbt metric models with a declared
column contract), key figures, charts, formats, sensitivity and its Gate B suite. Loading
one validates it completely, so a broken template fails with a message naming the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestration.access.roles import RoleName
from orchestration.exports import ChartSpec, Column
from orchestration.exports.formats import FormatName
from orchestration.settings import TEMPLATES_DIR

COLUMN_TYPES = ("text", "integer", "bigint", "numeric", "date", "timestamptz", "boolean")
_IDENT = r"^[a-z][a-z0-9_]{0,30}$"
_COLUMN = r"^[a-z][a-z0-9_]{0,62}$"  # a Postgres identifier (a report definition's columns can be long)


class TemplateError(ValueError):
    """A template file that cannot be used, with the reason and the file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnDef(_Strict):
    name: str = Field(pattern=_COLUMN)
    type: Literal["text", "integer", "bigint", "numeric", "date", "timestamptz", "boolean"]
    label: str | None = None

    def as_column(self) -> Column:
        return Column(name=self.name, type=self.type, label=self.label)


class SectionDef(_Strict):
    name: str = Field(pattern=_IDENT)
    title: str
    mandatory: bool = True
    max_rows: int = Field(default=1_000_000, ge=1)
    columns: tuple[ColumnDef, ...] = Field(min_length=1)
    sql: str

    @field_validator("columns")
    @classmethod
    def _tenant_column_first(cls, columns: tuple[ColumnDef, ...]) -> tuple[ColumnDef, ...]:
        # Gate B checks every section's tenant column against the run's tenant.
        if columns[0].name != "tenant_id" or columns[0].type != "text":
            raise ValueError("the first column of every section must be tenant_id (text)")
        names = [c.name for c in columns]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate column names: {names}")
        return columns


class MetricRef(_Strict):
    id: str
    model: str
    version: int | None = None


class FigureDef(_Strict):
    column: str
    label: str
    unit: str = ""


class KeyFiguresDef(_Strict):
    section: str
    figures: tuple[FigureDef, ...]


class ChartDef(_Strict):
    section: str
    kind: Literal["bar", "line"]
    x: str
    y: tuple[str, ...] = Field(min_length=1)
    title: str

    def as_spec(self) -> ChartSpec:
        return ChartSpec(section=self.section, kind=self.kind, x=self.x, y=self.y, title=self.title)


class FilterDef(_Strict):
    """A run parameter the section SQL reads as %(name)s; absent filters are passed as NULL."""
    name: str = Field(pattern=_IDENT)
    type: Literal["text", "integer", "number", "boolean", "date", "enum"]
    values: tuple[str, ...] = ()  # the allowed values of an enum
    label: str | None = None

    @model_validator(mode="after")
    def _enum_has_values(self) -> FilterDef:
        if (self.type == "enum") != bool(self.values):
            raise ValueError(f"filter {self.name}: an enum lists its values, other types do not")
        if self.name in ("window_start", "window_end"):
            raise ValueError(f"filter {self.name}: the name is reserved for the run's window")
        return self


class SourceDef(_Strict):
    """A raw source a template depends on, and how fresh it must be for a window.

    Fresh when the newest loaded row of the tenant (max(_loaded_at)) is no older than
    max_age_hours before the earlier of the window end and now. `event_time` is the column
    that places a row in a window, for late-arriving-data detection.
    """
    name: str = Field(pattern=_IDENT)
    event_time: str = Field(pattern=_IDENT)
    max_age_hours: int = Field(default=24, ge=1)


class RedactionRule(_Strict):
    """What external recipients see of a source field, wherever a section shows it (renamed,
    aliased or computed from it: the rule follows the column lineage, not the output name)."""
    field: str = Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")  # <dbt model>.<column>
    action: Literal["mask", "hash", "drop", "truncate"]
    length: int | None = Field(default=None, ge=1)  # truncate: characters kept
    rationale: str = Field(min_length=3)

    @model_validator(mode="after")
    def _length_for_truncate(self) -> RedactionRule:
        if (self.action == "truncate") != (self.length is not None):
            raise ValueError(f"redaction of {self.field}: truncate needs a length, other actions take none")
        return self


class RedactionPolicy(_Strict):
    external_variant: bool = False  # render a redacted variant for external recipients
    rules: tuple[RedactionRule, ...] = ()


class RolesDef(_Strict):
    run: tuple[RoleName, ...] = Field(min_length=1)
    receive: tuple[RoleName, ...] = Field(min_length=1)


class Template(_Strict):
    key: str = Field(pattern=_IDENT)
    version: int = Field(ge=1)
    title: str
    description: str = ""
    owner: str
    cadence: Literal["daily", "weekly", "monthly"]
    # tenant: run for one tenant's partition; platform: only for the platform partition
    # (access.tenants.PLATFORM), whose rows span every tenant.
    scope: Literal["tenant", "platform"] = "tenant"
    formats: tuple[FormatName, ...] = Field(min_length=1)
    sensitivity: Literal["internal", "confidential", "restricted"]
    roles: RolesDef
    retention_days: int = Field(ge=1, le=3650)
    # What a run does when a source it depends on is stale: fail, or publish marked DEGRADED.
    degraded_data: Literal["fail", "publish_degraded"] = "fail"
    # What rows loaded after a published run's watermark, inside its window, cause.
    backfill: Literal["ignore", "flag", "correct"] = "flag"
    timeout_seconds: int = Field(default=900, ge=1, le=86_400)
    # The longest window one run may cover (ad-hoc --from/--to included): a bound on cost.
    max_window_days: int = Field(default=366, ge=1, le=3660)
    sources: tuple[SourceDef, ...] = ()
    filters: tuple[FilterDef, ...] = ()
    redaction: RedactionPolicy = RedactionPolicy()
    expectation_suite: str
    primary_section: str
    metrics: tuple[MetricRef, ...] = ()
    sections: tuple[SectionDef, ...] = Field(min_length=1)
    key_figures: KeyFiguresDef | None = None
    charts: tuple[ChartDef, ...] = ()

    @model_validator(mode="after")
    def _references_resolve(self) -> Template:
        sections = {s.name: s for s in self.sections}
        if len(sections) != len(self.sections):
            raise ValueError("section names must be unique")
        if self.primary_section not in sections:
            raise ValueError(f"primary_section {self.primary_section!r} is not a section")
        refs: list[tuple[str, str]] = []
        if self.key_figures:
            refs += [(self.key_figures.section, f.column) for f in self.key_figures.figures]
        for chart in self.charts:
            refs += [(chart.section, c) for c in (chart.x, *chart.y)]
        for section, column in refs:
            if section not in sections:
                raise ValueError(f"key figure or chart refers to unknown section {section!r}")
            if column not in {c.name for c in sections[section].columns}:
                raise ValueError(f"section {section!r} declares no column {column!r}")
        return self

    @property
    def label(self) -> str:
        return f"{self.key} v{self.version}"

    def section(self, name: str) -> SectionDef:
        return next(s for s in self.sections if s.name == name)

    @property
    def content_hash(self) -> str:
        """sha256 of the template's canonical JSON: what an approval refers to.

        Not cached: `model_copy(update=...)` copies an instance's cached attributes, so a cached
        hash would name the original's content on a changed copy.
        """
        # Defaults are left out so that a new optional field does not void existing approvals.
        canonical = json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def models_read(self) -> list[tuple[str, int | None]]:
        """The dbt models (name, version) the section queries read, in first-use order."""
        found: list[tuple[str, int | None]] = []
        for section in self.sections:
            for name, version in _REF_CALL.findall(section.sql):
                ref = (name, int(version) if version else None)
                if ref not in found:
                    found.append(ref)
        return found


_REF_CALL = re.compile(r"ref\(\s*'([a-z0-9_]+)'\s*(?:,\s*(\d+)\s*)?\)")


# libyaml's safe loader when PyYAML has it (ten times faster: every CLI command that writes loads
# every template file once); the same safe subset of YAML either way.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def template_path(key: str, version: int, root: Path = TEMPLATES_DIR) -> Path:
    return root / f"{key}.v{version}.yaml"


def load_file(path: Path, *, check_name: bool = True) -> Template:
    try:
        data = yaml.load(path.read_text(), Loader=_SAFE_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"{path}: cannot read template: {exc}") from exc
    try:
        template = Template.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'template'}: {err['msg']}" for err in exc.errors()
        )
        raise TemplateError(f"{path}: invalid template: {problems}") from exc
    expected = template_path(template.key, template.version, path.parent).name
    if check_name and path.name != expected:
        raise TemplateError(f"{path}: key/version say the file should be named {expected}")
    return template


def load_all(root: Path = TEMPLATES_DIR) -> list[Template]:
    return [load_file(p) for p in sorted(root.glob("*.v*.yaml"))]


def load(key: str, version: int | None = None, root: Path = TEMPLATES_DIR) -> Template:
    """One template version; the newest when version is None."""
    candidates = [t for t in load_all(root) if t.key == key]
    if version is not None:
        candidates = [t for t in candidates if t.version == version]
    if not candidates:
        known = sorted({t.key for t in load_all(root)})
        wanted = f"{key} v{version}" if version is not None else key
        raise TemplateError(f"unknown template {wanted}; known templates: {', '.join(known) or 'none'}")
    return max(candidates, key=lambda t: t.version)
