"""Runs of report definitions: the request's correlation id on the run record, the template a
definition run executed (definitions have no template version row), and Idempotency-Keys.

Revision ID: 0013
"""
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.execute(
        """
        alter table control.report_runs
            add column correlation_id text,      -- the X-Request-ID of the request that asked for it
            add column template       jsonb;     -- a definition run's compiled one-section template
        create index report_runs_correlation on control.report_runs (correlation_id)
            where correlation_id is not null;

        -- POST .../run with an Idempotency-Key: the same principal and key always mean the same
        -- run; the fingerprint (definition and body) tells a retry from a different request.
        create table control.run_idempotency_keys (
            principal_id    text not null references control.principals on delete cascade,
            idempotency_key text not null,
            fingerprint     text not null,
            run_id          text not null references control.report_runs,
            created_at      timestamptz not null default now(),
            primary key (principal_id, idempotency_key)
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop table control.run_idempotency_keys;
        alter table control.report_runs drop column template, drop column correlation_id;
        """
    )
