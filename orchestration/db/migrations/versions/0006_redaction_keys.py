"""Per-tenant keys for hashing redacted fields.

Revision ID: 0006
"""
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.execute(
        """
        -- Readable by the control role only: report_reader has no grant on control.
        create table control.tenant_secrets (
            tenant_id  text primary key,
            hash_key   text not null check (hash_key ~ '^[0-9a-f]{64}$'),
            created_at timestamptz not null default now()
        );
        """
    )


def downgrade() -> None:
    op.execute("drop table control.tenant_secrets")
