"""Getting the warehouse ready, explicitly and at most once per process.

Read commands (`templates list/show/diff`, `runs list/show`, every `list`) never call this:
they read what is there. `init` and `demo` bootstrap on purpose; a writing command that needs
the schemas and the system templates registered (`run`, `templates submit/approve`, `schedules
create`) calls `ready()` once, before its first connection.
"""

from __future__ import annotations

import functools


@functools.cache
def database() -> None:
    """Schemas, roles, control tables (idempotent migrations)."""
    from orchestration.db import warehouse

    warehouse.ensure_database()


@functools.cache
def ready() -> tuple[str, ...]:
    """The database, and every system template file registered as a version (new ones as drafts)."""
    from orchestration.db import warehouse
    from orchestration.services import templates

    database()
    with warehouse.connection() as conn:
        return tuple(templates.register_system_templates(conn))
