"""Trigger function that makes snapshot tables immutable.

Revision ID: 0002
"""
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute(
        """
        create or replace function snapshots.refuse_change() returns trigger
        language plpgsql as $$
        begin
            raise exception 'report snapshots are immutable (% on %)', tg_op, tg_table_name;
        end $$;
        """
    )
