"""The artifact index: one row per published file, with its retention and legal hold.

Revision ID: 0009
"""
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.execute(
        """
        -- Written in the transaction that completes the run; retention and holds act on these rows.
        create table control.artifacts (
            artifact_id       bigserial primary key,
            run_id            text not null references control.report_runs (run_id),
            tenant_id         text not null,
            template_key      text not null,
            template_version  integer not null,
            -- 'internal' is the full-fidelity artifact; a redacted 'external' variant comes later.
            variant           text not null default 'internal',
            format            text not null,
            name              text not null,
            store             text not null check (store in ('local', 's3')),
            storage_key       text not null,              -- S3 key, or the local file's path
            location          text not null,              -- the run's location (folder, or s3://bucket/prefix)
            bytes             bigint not null check (bytes >= 0),
            sha256            text not null check (sha256 ~ '^[0-9a-f]{64}$'),
            sensitivity       text not null check (sensitivity in ('internal', 'confidential', 'restricted')),
            retention_until   timestamptz not null,
            legal_hold        boolean not null default false,
            legal_hold_reason text,
            legal_hold_by     text,
            legal_hold_at     timestamptz,
            created_at        timestamptz not null default now(),
            deleted_at        timestamptz,
            unique (run_id, variant, format),
            check (legal_hold = (legal_hold_reason is not null))
        );
        create index artifacts_tenant on control.artifacts (tenant_id, created_at desc);
        create index artifacts_due on control.artifacts (retention_until) where deleted_at is null;
        """
    )


def downgrade() -> None:
    op.execute("drop table control.artifacts")
