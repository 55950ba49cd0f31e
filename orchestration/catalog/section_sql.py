"""A section's SQL from template text to the statement that runs: render, guard, bind.

Rendering is Jinja in a sandbox (a template owner must not run Python on the server), with
`ref(model, version)` as its only name, and it records which relations the section reads: the
only relations the SQL guard lets it read. Binding replaces the `%(name)s` parameters with
quoted literals itself, so the statement runs without a parameter dict and a literal `%`
(`LIKE 'A%'`, `a % b`) is just SQL, never a psycopg2 format character.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
import jinja2.sandbox

from orchestration.catalog.templates import SectionDef, Template, TemplateError

# %(name)s is a parameter, %% an escaped % (psycopg2's spelling, kept for templates that used
# it); any other % is SQL text.
PLACEHOLDER = re.compile(r"%\(([A-Za-z_][A-Za-z0-9_]*)\)s|%%")
WINDOW_PARAMS = ("window_start", "window_end")

_ENV = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class RenderedSection:
    """A section's SQL after Jinja, and the relations its ref() calls resolved to."""
    name: str
    sql: str
    relations: frozenset[str]


def render(section: SectionDef, resolve_relation: Callable[..., str]) -> RenderedSection:
    """Section SQL with every ref(model, version) replaced by its relation (sandboxed Jinja).

    Raises TemplateError for a template the sandbox refuses or cannot render; the resolver's
    own errors (an unknown model) pass through unchanged.
    """
    relations: list[str] = []

    def ref(name: str, version: int | None = None) -> str:
        relation = resolve_relation(name, version)
        relations.append(relation)
        return relation

    try:
        sql = _ENV.from_string(section.sql).render(ref=ref)
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"section {section.name}: its SQL template uses something the sandbox refuses ({exc})") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"section {section.name}: cannot render its SQL: {exc}") from exc
    return RenderedSection(section.name, sql, frozenset(relations))


def parameter_names(template: Template) -> tuple[str, ...]:
    """The parameters a section of this template may use: the run's window and its filters."""
    return WINDOW_PARAMS + tuple(f.name for f in template.filters)


def neutral(sql: str) -> str:
    """The SQL with each parameter as NULL and %% as %: for parsing, never for running."""
    return PLACEHOLDER.sub(lambda m: "NULL" if m[1] else "%", sql)


def bind(sql: str, params: Mapping[str, Any], cur) -> str:
    """The SQL with each %(name)s replaced by the quoted value (psycopg2's own quoting).

    Unknown names are refused (the guard has refused them already; this is the last line).
    """
    def literal(match: re.Match) -> str:
        if match[1] is None:
            return "%"
        if match[1] not in params:
            raise TemplateError(f"section SQL uses the parameter %({match[1]})s, which the template does not declare")
        return cur.mogrify("%s", (params[match[1]],)).decode()

    return PLACEHOLDER.sub(literal, sql)
