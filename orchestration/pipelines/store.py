"""The only SQL on control.pipelines, pipeline_versions (the shared versioned-object statements of
governance/versioned_store.py), pipeline_runs and pipeline_run_members. Runs in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

from orchestration.db.warehouse import dict_rows
from orchestration.governance.versioned_store import VersionedTable
from orchestration.pipelines.models import MemberRun, Pipeline, PipelineRun, PipelineVersion

# the pipeline and its versions: the shared versioned-object statements (services/pipelines.py)
TABLE = VersionedTable(header_table="pipelines", version_table="pipeline_versions", id_prefix="pipe_",
                       header_model=Pipeline, version_model=PipelineVersion)
get_version = TABLE.get_version
_RUN_UPDATABLE = frozenset({"status", "settled_at"})


# ---------------------------------------------------------------- batch runs


def find_run(conn, pipeline_id: str, requester: str, idempotency_key: str) -> tuple[str, str] | None:
    """(pipeline_run_id, fingerprint) that this principal's key already stands for on this pipeline."""
    with conn.cursor() as cur:
        cur.execute("""select pipeline_run_id, fingerprint from control.pipeline_runs
                        where pipeline_id = %s and requester = %s and idempotency_key = %s""",
                    (pipeline_id, requester, idempotency_key))
        row = cur.fetchone()
    return (row[0], row[1]) if row else None


def insert_run(conn, pipeline: Pipeline, *, requester: str, trigger: str, correlation_id: str | None,
               idempotency_key: str | None, fingerprint: str, now: dt.datetime) -> str | None:
    """A new batch; None when a concurrent request bound the same Idempotency-Key first."""
    with conn.cursor() as cur:
        cur.execute(
            """insert into control.pipeline_runs (pipeline_run_id, pipeline_id, version, tenant_id, requester, trigger,
                                                  correlation_id, idempotency_key, fingerprint, created_at)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               on conflict (pipeline_id, requester, idempotency_key) where idempotency_key is not null do nothing
               returning pipeline_run_id""",
            ("prun_" + secrets.token_hex(8), pipeline.pipeline_id, pipeline.active_version, pipeline.tenant_id,
             requester, trigger, correlation_id, idempotency_key, fingerprint, now))
        row = cur.fetchone()
    return row[0] if row else None


def insert_member(conn, pipeline_run_id: str, member: MemberRun) -> None:
    with conn.cursor() as cur:
        cur.execute("""insert into control.pipeline_run_members (pipeline_run_id, position, member, run_id, state, error)
                       values (%s, %s, %s, %s, %s, %s)""",
                    (pipeline_run_id, member.position, member.member, member.run_id, member.state, member.error))


def update_member(conn, pipeline_run_id: str, member: MemberRun) -> None:
    with conn.cursor() as cur:
        cur.execute("""update control.pipeline_run_members
                          set state = %s, error = %s, delivery = %s, delivery_detail = %s
                        where pipeline_run_id = %s and position = %s""",
                    (member.state, member.error, member.delivery, json.dumps(member.delivery_detail),
                     pipeline_run_id, member.position))


def update_run(conn, pipeline_run_id: str, changes: dict[str, Any]) -> None:
    unknown = set(changes) - _RUN_UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    sets = ", ".join(f"{k} = %({k})s" for k in changes)
    with conn.cursor() as cur:
        cur.execute(f"update control.pipeline_runs set {sets} where pipeline_run_id = %(id)s",
                    {**changes, "id": pipeline_run_id})


def _members(cur, pipeline_run_id: str) -> tuple[MemberRun, ...]:
    cur.execute("""select position, member, run_id, state, error, delivery, delivery_detail
                     from control.pipeline_run_members where pipeline_run_id = %s order by position""",
                (pipeline_run_id,))
    return tuple(MemberRun.model_validate(r) for r in dict_rows(cur))


_RUN_COLUMNS = ("pipeline_run_id, pipeline_id, version, tenant_id, requester, trigger, status, correlation_id, "
                "created_at, settled_at")


def get_run(conn, pipeline_run_id: str, *, for_update: bool = False) -> PipelineRun | None:
    with conn.cursor() as cur:
        cur.execute(f"select {_RUN_COLUMNS} from control.pipeline_runs where pipeline_run_id = %s"
                    + (" for update skip locked" if for_update else ""), (pipeline_run_id,))
        rows = dict_rows(cur)
        if not rows:
            return None
        return PipelineRun.model_validate({**rows[0], "members": _members(cur, pipeline_run_id)})


def list_runs(conn, pipeline_id: str, *, before: str | None, limit: int) -> list[PipelineRun]:
    """Newest first; `before` is the cursor (a pipeline_run_id of the previous page)."""
    with conn.cursor() as cur:
        cur.execute(
            f"""select {_RUN_COLUMNS} from control.pipeline_runs
                 where pipeline_id = %(pipeline)s
                   and (%(before)s::text is null or (created_at, pipeline_run_id) <
                        (select created_at, pipeline_run_id from control.pipeline_runs where pipeline_run_id = %(before)s))
                 order by created_at desc, pipeline_run_id desc limit %(limit)s""",
            {"pipeline": pipeline_id, "before": before, "limit": limit})
        rows = dict_rows(cur)
        return [PipelineRun.model_validate({**r, "members": _members(cur, r["pipeline_run_id"])}) for r in rows]


def unsettled_runs(conn, limit: int = 100) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("select pipeline_run_id from control.pipeline_runs where status = 'running' "
                    "order by created_at limit %s", (limit,))
        return [r[0] for r in cur.fetchall()]
