"""The only SQL on control.report_definitions and their versions: the tables described for the
shared versioned-object statements (governance/versioned_store.py), and the query of which
definitions use what. Runs in the caller's transaction."""

from __future__ import annotations

from orchestration.catalog.definitions import Definition, DefinitionVersion
from orchestration.governance.versioned_store import VersionedTable

TABLE = VersionedTable(header_table="report_definitions", version_table="report_definition_versions",
                       id_prefix="rdef_", header_model=Definition, version_model=DefinitionVersion)
INVALID = "invalid"  # a list filter beside the lifecycle statuses: definitions marked invalid
# what runs, schedules, charts and validity read and mark (services/definitions.py has the rest)
get = TABLE.get
get_version = TABLE.get_version
update = TABLE.update


def ids_using(conn, *, entity_ids: list[str] | None = None, created_by: str | None = None) -> list[str]:
    """Definitions not archived whose current or active version reads one of the entities, or
    that the principal saved: the ones a registry or policy change may invalidate."""
    with conn.cursor() as cur:
        cur.execute(
            """select distinct d.definition_id from control.report_definitions d
                 join control.report_definition_versions v on v.definition_id = d.definition_id
                                                          and v.version in (d.current_version, d.active_version)
                where d.status <> 'archived'
                  and (%(entities)s::text[] is null or v.spec->'entity_ids' ?| %(entities)s::text[])
                  and (%(owner)s::text is null or d.created_by = %(owner)s)
                order by 1""",
            {"entities": entity_ids, "owner": created_by},
        )
        return [row[0] for row in cur.fetchall()]
