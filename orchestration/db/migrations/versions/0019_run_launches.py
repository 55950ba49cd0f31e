"""The warm worker pool: launches handed to it, and its processes' heartbeats.

- control.run_launches: work for the pool, in two kinds. `submit`: a run the CLI or the API
  admitted, to be submitted to Dagster's run queue as a `report_run` run by the pool's submitter
  (a warm process that holds the code location). `execute`: a Dagster run the run launcher
  (defs/runs/launcher.py) handed over after the daemon dequeued it, executed by a warm worker.
  Claimed with `for update skip locked`, higher priority first (ad-hoc before a fan-out).
- control.pool_processes: each pool process's heartbeat, so a launch can tell whether a pool is
  there to take it (otherwise it starts a detached worker, as before the pool).

Revision ID: 0019
"""
from alembic import op

revision = "0019"
down_revision = "0018"


def upgrade() -> None:
    op.execute(
        """
        create table control.run_launches (
            launch_id       bigserial primary key,
            kind            text not null check (kind in ('submit', 'execute')),
            report_run_id   text,
            dagster_run_id  text,
            priority        integer not null default 0,
            enqueued_at     timestamptz not null default now(),
            claimed_at      timestamptz,
            claimed_pid     integer,
            claimed_host    text,
            done_at         timestamptz,
            outcome         text,
            constraint run_launches_target check (case kind when 'submit' then report_run_id is not null
                                                              else dagster_run_id is not null end)
        );
        create index run_launches_open on control.run_launches (kind, priority desc, launch_id)
            where claimed_at is null;

        create table control.pool_processes (
            pid           integer not null,
            host          text not null,
            parent_pid    integer not null,  -- the pool (`nexus-reports workers`) it was forked from
            role          text not null check (role in ('submitter', 'worker')),
            started_at    timestamptz not null default now(),
            heartbeat_at  timestamptz not null default now(),
            runs_done     integer not null default 0,
            queue_ok      boolean not null default false,
            primary key (host, pid)
        );
        """
    )


def downgrade() -> None:
    op.execute("drop table control.pool_processes; drop table control.run_launches;")
