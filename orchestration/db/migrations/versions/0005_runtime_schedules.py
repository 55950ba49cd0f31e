"""Runtime report schedules and the record of each of their ticks.

Revision ID: 0005
"""
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.execute(
        """
        -- A schedule defined at runtime (besides each template's cadence schedule in code):
        -- one template version for one tenant, on a cron expression in an IANA time zone.
        create table control.schedules (
            schedule_id      bigserial primary key,
            template_key     text not null,
            template_version integer not null,
            tenant_id        text not null,
            cron             text not null,
            timezone         text not null,
            formats          text[] not null check (cardinality(formats) > 0),
            recipients       text[] not null default '{}',   -- stored only; delivery reads them later
            allow_overlap    boolean not null default false,
            catch_up         text not null default 'skip' check (catch_up in ('skip', 'latest')),
            state            text not null default 'active' check (state in ('active', 'paused', 'archived')),
            owner            text not null,                  -- the creator; revalidated at every tick
            -- Ticks at or before this instant are never evaluated: set at create and at resume,
            -- so a paused stretch is not caught up.
            ticks_from       timestamptz not null default now(),
            created_at       timestamptz not null default now(),
            updated_at       timestamptz not null default now(),
            foreign key (template_key, template_version) references control.template_versions
        );
        create index schedules_active on control.schedules (state) where state = 'active';
        create index schedules_tenant on control.schedules (tenant_id);

        -- One row per evaluated tick: at most one run per (schedule, tick), whatever restarts.
        create table control.schedule_ticks (
            schedule_id   bigint not null references control.schedules,
            tick_at       timestamptz not null,
            outcome       text not null
                check (outcome in ('requested', 'skipped_overlap', 'skipped_catch_up', 'refused')),
            reason        text,
            run_key       text,         -- the Dagster run key of a requested tick
            partition_key text,
            created_at    timestamptz not null default now(),
            unique (schedule_id, tick_at),
            check ((outcome = 'requested') = (run_key is not null))
        );
        """
    )
