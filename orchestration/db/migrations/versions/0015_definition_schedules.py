"""One schedule model for templates and report definitions, on a cron or an ISO-8601 interval.

A schedule targets a template version (as before) or a report definition (`rdef_...`, whose
active version it runs at each tick); it ticks on a cron expression in a time zone, or every
fixed interval (`PT6H`) from its creation. Pause and archive keep their reason; each tick of a
definition schedule names the run it submitted.

Revision ID: 0014_h12sched
"""
from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    op.execute(
        """
        alter table control.schedules
            add column target_kind   text not null default 'template'
                                     check (target_kind in ('template', 'definition')),
            add column definition_id text references control.report_definitions,
            add column every         text,          -- an ISO-8601 interval (PT6H) instead of a cron
            add column paused_at     timestamptz,
            add column archived_at   timestamptz,
            add column reason_code   text,          -- of the last pause or archive
            add column reason_text   text,
            alter column template_key drop not null,
            alter column template_version drop not null,
            alter column cron drop not null,
            add constraint schedules_one_target check (case target_kind
                when 'template' then template_key is not null and template_version is not null and definition_id is null
                else definition_id is not null and template_key is null and template_version is null end),
            add constraint schedules_one_timing check ((cron is null) <> (every is null));
        create index schedules_definition on control.schedules (definition_id) where definition_id is not null;

        -- the definition run a requested tick submitted (template ticks run under their run key)
        alter table control.schedule_ticks add column run_id text references control.report_runs;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        alter table control.schedule_ticks drop column run_id;
        -- schedules the older model cannot hold (definitions, intervals) go, with their ticks and approvals
        delete from control.schedule_ticks t using control.schedules s
            where t.schedule_id = s.schedule_id and (s.target_kind <> 'template' or s.every is not null);
        delete from control.distribution_approvals a using control.schedules s
            where a.schedule_id = s.schedule_id and (s.target_kind <> 'template' or s.every is not null);
        delete from control.schedules where target_kind <> 'template' or every is not null;
        drop index control.schedules_definition;
        alter table control.schedules
            drop constraint schedules_one_target, drop constraint schedules_one_timing,
            alter column template_key set not null, alter column template_version set not null,
            alter column cron set not null,
            drop column reason_text, drop column reason_code, drop column archived_at, drop column paused_at,
            drop column every, drop column definition_id, drop column target_kind;
        """
    )
