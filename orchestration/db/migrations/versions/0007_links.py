"""Secure download links (stored only as the sha256 of their token) and every access to them.

Revision ID: 0007
"""
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.execute(
        """
        -- A link grants one principal one artifact (run + variant + format) until it expires or is
        -- revoked. The token itself is never stored: only its sha256.
        create table control.links (
            link_id        bigserial primary key,
            token_sha256   text not null unique check (token_sha256 ~ '^[0-9a-f]{64}$'),
            run_id         text not null references control.report_runs,
            variant        text not null default 'internal',
            format         text not null,
            principal_id   text not null references control.principals,
            tenant_id      text not null,
            created_by     text not null,
            created_at     timestamptz not null,
            expires_at     timestamptz not null,
            revoked_at     timestamptz,
            revoked_by     text,
            revoke_reason  text,
            check (expires_at > created_at),
            check ((revoked_at is null) = (revoked_by is null)),
            check ((revoked_at is null) = (revoke_reason is null))
        );
        create index links_run on control.links (run_id);
        create index links_tenant_active on control.links (tenant_id) where revoked_at is null;

        -- Every request for a link, granted or denied (an unknown token has no link).
        create table control.access_events (
            event_id     bigserial primary key,
            at           timestamptz not null,
            link_id      bigint references control.links,
            principal_id text,
            tenant_id    text,
            run_id       text,
            outcome      text not null check (outcome in ('granted', 'denied')),
            reason       text not null,
            remote_addr  text
        );
        create index access_events_link on control.access_events (link_id);
        create index access_events_tenant on control.access_events (tenant_id, at);
        """
    )


def downgrade() -> None:
    op.execute("drop table control.access_events; drop table control.links;")
