"""Principals, roles, tenant memberships, template lifecycle and the append-only audit log.

Revision ID: 0003
"""
from alembic import op

revision = "0003"
down_revision = "0002"


# long: a migration is one DDL transaction read top to bottom; splitting it would hide the schema it creates
def upgrade() -> None:
    op.execute(
        """
        create table control.principals (
            principal_id  text primary key,
            kind          text not null check (kind in ('user', 'service')),
            display_name  text not null,
            active        boolean not null default true,
            created_at    timestamptz not null default now()
        );
        create table control.principal_roles (
            principal_id text not null references control.principals on delete cascade,
            role         text not null check (role in ('viewer', 'analyst', 'manager', 'executive',
                              'template_owner', 'approver', 'tenant_admin', 'platform_admin')),
            primary key (principal_id, role)
        );
        -- tenant_id '*' means every tenant (platform staff, service accounts).
        create table control.tenant_memberships (
            principal_id text not null references control.principals on delete cascade,
            tenant_id    text not null,
            primary key (principal_id, tenant_id)
        );

        create table control.template_versions (
            template_key       text not null,
            version            integer not null,
            owner_tenant       text,            -- null: a system template; else a tenant's custom template
            content_hash       text not null,
            content            jsonb not null,
            state              text not null default 'draft' check (state in ('draft', 'approved', 'deprecated')),
            author             text not null,
            submitted_at       timestamptz not null default now(),
            approved_by        text,
            approved_at        timestamptz,
            deprecated_by      text,
            deprecated_at      timestamptz,
            deprecation_reason text,
            primary key (template_key, version),
            check (state = 'draft' or approved_by is not null),
            check (approved_by is null or approved_by <> author)
        );
        create table control.template_events (
            event_id     bigserial primary key,
            template_key text not null,
            version      integer not null,
            event        text not null,
            actor        text not null,
            at           timestamptz not null default now(),
            details      jsonb not null default '{}'::jsonb
        );

        create table control.audit_log (
            seq            bigserial primary key,
            at             timestamptz not null,
            actor          text not null,
            tenant_id      text,
            action         text not null,
            target         text not null,
            outcome        text not null,
            correlation_id text,
            details        jsonb not null default '{}'::jsonb,
            prev_hash      text not null,
            row_hash       text not null
        );
        create or replace function control.audit_append_only() returns trigger
        language plpgsql as $$
        begin
            raise exception 'the audit log is append-only (% refused)', tg_op;
        end $$;
        create trigger audit_append_only before update or delete on control.audit_log
            for each row execute function control.audit_append_only();
        create trigger audit_append_only_truncate before truncate on control.audit_log
            for each statement execute function control.audit_append_only();
        """
    )
