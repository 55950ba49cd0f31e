"""Delivery outbox, webhook endpoint secrets, distribution approvals (Gate C), e-mail domain allow-lists.

Revision ID: 0008
"""
from alembic import op

revision = "0008"
down_revision = "0007"


# long: a migration is one DDL transaction read top to bottom; splitting it would hide the schema it creates
def upgrade() -> None:
    op.execute(
        """
        -- The outbox: one row per run x recipient x channel. The idempotency key is unique, so
        -- enqueueing again never sends again; a row is marked sent right after the channel's
        -- acknowledgement, and the e-mail Message-ID / webhook-id derive from the key.
        create table control.deliveries (
            delivery_id         bigserial primary key,
            idempotency_key     text not null unique,
            run_id              text not null references control.report_runs,
            tenant_id           text not null,
            template_key        text not null,
            sensitivity         text not null,
            schedule_id         bigint,
            channel             text not null check (channel in ('email', 'webhook', 'bucket')),
            address             text not null,
            principal_id        text,
            external            boolean not null default false,
            variant             text not null default 'internal',
            config              jsonb not null default '{}'::jsonb,
            distribution_hash   text,     -- the recipient+channel set it was sent under (Gate C)
            status              text not null default 'pending'
                check (status in ('pending', 'sending', 'sent', 'failed_transient', 'failed_permanent')),
            attempts            integer not null default 0,
            last_error          text,
            next_attempt_at     timestamptz not null default now(),
            claimed_at          timestamptz,
            sent_at             timestamptz,
            provider_message_id text,     -- the e-mail Message-ID, the webhook-id, the S3 ETag
            http_status         integer,
            created_at          timestamptz not null default now(),
            updated_at          timestamptz not null default now(),
            check ((status = 'sent') = (sent_at is not null))
        );
        create index deliveries_due on control.deliveries (next_attempt_at)
            where status in ('pending', 'failed_transient', 'sending');
        create index deliveries_run on control.deliveries (run_id);

        -- A webhook endpoint of a tenant and the secret its payloads are signed with.
        create table control.webhook_endpoints (
            tenant_id  text not null,
            url        text not null,
            secret     text not null,     -- whsec_<base64>, Standard Webhooks
            created_by text not null,
            created_at timestamptz not null default now(),
            primary key (tenant_id, url)
        );

        -- Gate C: a recorded approval of a schedule's distribution (who receives it, over which
        -- channels). The newest row per schedule is the one in force; it covers exactly the
        -- set whose hash it stores, so adding a recipient or a channel voids it.
        create table control.distribution_approvals (
            approval_id       bigserial primary key,
            schedule_id       bigint not null references control.schedules,
            approver          text not null,
            approved_at       timestamptz not null default now(),
            recipients        jsonb not null,
            channels          text[] not null,
            distribution_hash text not null
        );
        create index distribution_approvals_schedule on control.distribution_approvals (schedule_id, approval_id desc);

        -- E-mail domains a tenant's reports may be sent to.
        create table control.tenant_email_domains (
            tenant_id  text not null,
            domain     text not null check (domain = lower(domain)),
            added_by   text not null,
            added_at   timestamptz not null default now(),
            primary key (tenant_id, domain)
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop table if exists control.tenant_email_domains;
        drop table if exists control.distribution_approvals;
        drop table if exists control.webhook_endpoints;
        drop table if exists control.deliveries;
        """
    )
