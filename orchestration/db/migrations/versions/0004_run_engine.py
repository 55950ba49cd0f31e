"""Run engine: lifecycle stages, dedupe of active runs, retries, supersession, freshness, security events.

Revision ID: 0004
"""
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.execute(
        """
        alter table control.report_runs
            add column stage             text not null default 'queued',
            add column retry_guidance    text,
            add column retry_of          text references control.report_runs (run_id),
            add column attempt           integer not null default 1,
            add column supersedes_run_id text references control.report_runs (run_id),
            add column superseded_by     text references control.report_runs (run_id),
            add column degraded          boolean not null default false,
            add column degraded_reason   text,
            add column source_watermarks jsonb not null default '{}'::jsonb,
            add column snapshot_state    text not null default 'none'
                check (snapshot_state in ('none', 'frozen', 'abandoned')),
            add column cancel_requested  timestamptz,
            add column worker_pid        integer,
            add column worker_host       text,
            add column heartbeat_at      timestamptz,
            add column timeout_seconds   integer,
            add column schedule_id       text,
            add column tick_at           timestamptz,
            add column published_at      timestamptz,
            add column late_data_at      timestamptz,
            add constraint report_runs_trigger check (trigger in ('manual', 'schedule', 'correction', 'retry')),
            add constraint report_runs_correction check ((trigger = 'correction') = (supersedes_run_id is not null)),
            add constraint report_runs_failure_class check (failure_class is null or failure_class in (
                'query_failure', 'source_unavailable', 'validation_failed', 'policy_violation', 'format_error',
                'storage_failure', 'delivery_failure', 'timeout', 'cancelled'));
        -- The same request (input hash) may be active only once: a second submission finds the first.
        create unique index report_runs_one_active_per_hash on control.report_runs (input_hash)
            where state in ('queued', 'running');
        -- Cancelled runs also carry their class, so "failed iff class" becomes "ended badly iff class".
        alter table control.report_runs drop constraint report_runs_check1;
        alter table control.report_runs add constraint report_runs_class_iff_unsuccessful
            check ((state in ('failed', 'cancelled')) = (failure_class is not null));

        create table control.security_events (
            event_id    bigserial primary key,
            at          timestamptz not null default now(),
            kind        text not null,
            actor       text not null,
            tenant_id   text,
            details     jsonb not null default '{}'::jsonb
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop table control.security_events;
        drop index control.report_runs_one_active_per_hash;
        alter table control.report_runs
            drop constraint report_runs_class_iff_unsuccessful,
            drop constraint report_runs_trigger,
            drop constraint report_runs_correction,
            drop constraint report_runs_failure_class,
            drop column stage, drop column retry_guidance, drop column retry_of, drop column attempt,
            drop column supersedes_run_id, drop column superseded_by, drop column degraded,
            drop column degraded_reason, drop column source_watermarks, drop column snapshot_state,
            drop column cancel_requested, drop column worker_pid, drop column worker_host,
            drop column heartbeat_at, drop column timeout_seconds, drop column schedule_id,
            drop column tick_at, drop column published_at, drop column late_data_at;
        """
    )
