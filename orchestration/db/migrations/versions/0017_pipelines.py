"""Export pipelines: a tenant's batch of report definitions and templates exported to one
destination, their versions, and each batch run with one row per member.

Revision ID: 0017
"""
from alembic import op

revision = "0017"
down_revision = "0016"


# long: one DDL script, read top to bottom; splitting it would only scatter the schema
def upgrade() -> None:
    op.execute(
        """
        -- A pipeline changes only by a new version (PATCH); runs use the active version.
        create table control.pipelines (
            pipeline_id     text primary key check (pipeline_id ~ '^pipe_[0-9a-f]{16}$'),
            tenant_id       text not null,
            status          text not null default 'draft'
                            check (status in ('draft', 'active', 'paused', 'archived')),
            current_version integer not null default 1 check (current_version >= 1),
            active_version  integer,
            created_by      text not null,
            created_at      timestamptz not null,
            updated_at      timestamptz not null,
            activated_at    timestamptz,
            paused_at       timestamptz,
            archived_at     timestamptz,
            reason_code     text,
            reason_text     text
        );
        create index pipelines_tenant on control.pipelines (tenant_id, pipeline_id);

        create table control.pipeline_versions (
            pipeline_id  text not null references control.pipelines,
            version      integer not null check (version >= 1),
            spec         jsonb not null,       -- name, members, destination, format
            created_by   text not null,
            created_at   timestamptz not null,
            activated_by text,
            activated_at timestamptz,
            primary key (pipeline_id, version)
        );

        -- One batch: a run per member, then each published member delivered once to the
        -- destination (the outbox's idempotency key per run and recipient).
        create table control.pipeline_runs (
            pipeline_run_id text primary key check (pipeline_run_id ~ '^prun_[0-9a-f]{16}$'),
            pipeline_id     text not null references control.pipelines,
            version         integer not null,
            tenant_id       text not null,
            requester       text not null,
            trigger         text not null default 'manual',
            status          text not null default 'running'
                            check (status in ('running', 'completed', 'partially_failed', 'failed')),
            correlation_id  text,
            idempotency_key text,
            fingerprint     text not null,
            created_at      timestamptz not null,
            settled_at      timestamptz
        );
        create index pipeline_runs_pipeline on control.pipeline_runs (pipeline_id, created_at desc);
        create index pipeline_runs_unsettled on control.pipeline_runs (created_at) where status = 'running';
        -- The same principal and Idempotency-Key on the same pipeline always mean the same batch.
        create unique index pipeline_runs_idempotency on control.pipeline_runs (pipeline_id, requester, idempotency_key)
            where idempotency_key is not null;

        create table control.pipeline_run_members (
            pipeline_run_id text not null references control.pipeline_runs on delete cascade,
            position        integer not null,
            member          text not null,        -- rdef_... or a template key
            run_id          text references control.report_runs,
            state           text not null check (state in ('submitted', 'published', 'failed')),
            error           text,
            delivery        text not null default 'none' check (delivery in ('none', 'delivered', 'refused', 'failed')),
            delivery_detail jsonb not null default '{}',
            primary key (pipeline_run_id, position)
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop table control.pipeline_run_members;
        drop table control.pipeline_runs;
        drop table control.pipeline_versions;
        drop table control.pipelines;
        """
    )
