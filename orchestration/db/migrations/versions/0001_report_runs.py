"""Report run records.

Revision ID: 0001
"""
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute(
        """
        create table control.report_runs (
            run_id            text primary key,
            dagster_run_id    text,
            template_key      text not null,
            template_version  integer not null,
            tenant_id         text not null,
            period_key        text,
            window_start      date not null,
            window_end        date not null,
            formats           text[] not null,
            requester         text not null,
            trigger           text not null,
            request           jsonb not null,
            input_hash        text not null,
            state             text not null default 'queued'
                check (state in ('queued', 'running', 'completed', 'failed', 'cancelled', 'expired')),
            failure_class     text,
            diagnosis         text,
            snapshot_tables   jsonb not null default '{}'::jsonb,
            row_counts        jsonb not null default '{}'::jsonb,
            gate_passed       boolean,
            gate_summary      jsonb,
            artifact_location text,
            manifest_sha256   text,
            created_at        timestamptz not null default now(),
            started_at        timestamptz,
            ended_at          timestamptz,
            check (window_start < window_end),
            check ((state = 'failed') = (failure_class is not null))
        );
        create index report_runs_input_hash on control.report_runs (input_hash);
        create index report_runs_dagster_run on control.report_runs (dagster_run_id);
        create index report_runs_tenant on control.report_runs (tenant_id, template_key, period_key);
        """
    )
