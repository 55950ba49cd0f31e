"""Pipelines on a schedule, and Gate C for pipelines.

- control.schedules gains a third target kind, `pipeline` (pipeline_id): each tick runs one
  batch of the pipeline's active version; the tick records the batch it started.
- control.distribution_approvals approves the distribution of a schedule or of a pipeline
  (exactly one); an outbox row remembers the pipeline it delivers for, so the send-time Gate C
  check looks up the same approval the enqueue did.

Revision ID: 0018
"""
from alembic import op

revision = "0018"
down_revision = "0017"


def upgrade() -> None:
    op.execute(
        """
        alter table control.schedules
            drop constraint schedules_target_kind_check,
            add constraint schedules_target_kind_check check (target_kind in ('template', 'definition', 'pipeline')),
            add column pipeline_id text references control.pipelines,
            drop constraint schedules_one_target,
            add constraint schedules_one_target check (case target_kind
                when 'template' then template_key is not null and template_version is not null
                                     and definition_id is null and pipeline_id is null
                when 'definition' then definition_id is not null and template_key is null
                                     and template_version is null and pipeline_id is null
                else pipeline_id is not null and definition_id is null and template_key is null
                     and template_version is null end);
        create index schedules_pipeline on control.schedules (pipeline_id) where pipeline_id is not null;

        -- the batch a requested pipeline tick started
        alter table control.schedule_ticks add column pipeline_run_id text references control.pipeline_runs;

        alter table control.distribution_approvals
            alter column schedule_id drop not null,
            add column pipeline_id text references control.pipelines,
            add constraint distribution_approvals_one_target check ((schedule_id is null) <> (pipeline_id is null));
        create index distribution_approvals_pipeline on control.distribution_approvals (pipeline_id, approval_id desc)
            where pipeline_id is not null;

        alter table control.deliveries add column pipeline_id text;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        alter table control.deliveries drop column pipeline_id;
        delete from control.distribution_approvals where pipeline_id is not null;
        drop index control.distribution_approvals_pipeline;
        alter table control.distribution_approvals
            drop constraint distribution_approvals_one_target,
            drop column pipeline_id,
            alter column schedule_id set not null;
        alter table control.schedule_ticks drop column pipeline_run_id;
        delete from control.schedule_ticks t using control.schedules s
            where t.schedule_id = s.schedule_id and s.target_kind = 'pipeline';
        delete from control.schedules where target_kind = 'pipeline';
        drop index control.schedules_pipeline;
        alter table control.schedules
            drop constraint schedules_one_target,
            drop column pipeline_id,
            drop constraint schedules_target_kind_check,
            add constraint schedules_target_kind_check check (target_kind in ('template', 'definition')),
            add constraint schedules_one_target check (case target_kind
                when 'template' then template_key is not null and template_version is not null and definition_id is null
                else definition_id is not null and template_key is null and template_version is null end);
        """
    )
