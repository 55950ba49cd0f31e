"""Governed scopes: verticals, geo scopes and consent in the report context; principals' scopes.

Extends 0010's design, never replaces it: the admin still writes one context row per
report_reader backend and SECURITY DEFINER functions in `rls` read it back for the calling
backend only. The row now also says which verticals and regions the query may see (NULL: no
restriction) and whether consent-withdrawn subjects may be included (only for root, default
false). `rls.withdrawn_subjects()` reads raw.consent_events live, so a withdrawal counts on the
next query, not at the next dbt build. It is plpgsql on purpose: a `language sql` body is
checked when created, and raw.consent_events may not exist yet when migrations run (the seed
or the loaders create it).

Principals get vertical and region scopes (control.principal_scopes; none: unrestricted), and
the role `root` (the specification's ROOT requests) becomes a valid role.

Revision ID: 0012
"""
from alembic import op

revision = "0012"
down_revision = "0011"

READER = "report_reader"

# The calling backend's context row, as in rls.report_tenant() (0010).
_MINE = """
            from control.report_contexts c
            join pg_catalog.pg_stat_activity a
              on a.pid = c.backend_pid and a.backend_start = c.backend_start
            where c.token = pg_catalog.current_setting('app.report_context', true)
              and c.backend_pid = pg_catalog.pg_backend_pid()
"""


def _context_function(name: str, returns: str, expression: str) -> str:
    return f"""
        create or replace function rls.{name}() returns {returns}
            language sql stable security definer
            set search_path = pg_catalog, pg_temp
        as $fn$
            select {expression} {_MINE}
        $fn$;
        revoke all on function rls.{name}() from public;
        grant execute on function rls.{name}() to {READER};
    """


def upgrade() -> None:
    op.execute(
        """
        alter table control.report_contexts
            add column include_withdrawn boolean not null default false;

        create table control.principal_scopes (
            principal_id text not null references control.principals on delete cascade,
            dimension    text not null check (dimension in ('vertical', 'region')),
            value        text not null check (value ~ '^[a-z][a-z0-9_]{0,62}$'),
            primary key (principal_id, dimension, value)
        );

        alter table control.principal_roles drop constraint principal_roles_role_check;
        alter table control.principal_roles add constraint principal_roles_role_check
            check (role in ('viewer', 'analyst', 'manager', 'executive', 'template_owner', 'approver',
                            'tenant_admin', 'platform_admin', 'root'));
        """
    )
    op.execute(_context_function("report_verticals", "text[]", "c.verticals"))
    op.execute(_context_function("report_geo_scopes", "text[]", "c.geo_scopes"))
    # No context row: false, never null (a policy's `or` must not turn unknown into a row).
    op.execute(_context_function("report_include_withdrawn", "boolean",
                                 "coalesce(bool_or(c.include_withdrawn), false)"))
    op.execute(
        f"""
        create or replace function rls.withdrawn_subjects() returns text[]
            language plpgsql stable security definer
            set search_path = pg_catalog, pg_temp
        as $fn$
        declare
            tenant text := rls.report_tenant();
            found text[];
        begin
            if tenant is null then
                return '{{}}';  -- no context: the tenant check already hides every row
            end if;
            if pg_catalog.to_regclass('raw.consent_events') is null then
                -- fail closed: without consent data no subject's rows may be shown
                raise exception 'raw.consent_events is missing: consent cannot be checked (load it or run seed)';
            end if;
            select pg_catalog.array_agg(l.subject_id) into found
            from (select distinct on (e.subject_id) e.subject_id, e.state
                  from raw.consent_events e
                  where e.tenant_id = tenant
                  order by e.subject_id, e.changed_at desc, e.event_id desc) l
            where l.state = 'withdrawn';
            return coalesce(found, '{{}}');
        end
        $fn$;
        revoke all on function rls.withdrawn_subjects() from public;
        grant execute on function rls.withdrawn_subjects() to {READER};
        """
    )


def downgrade() -> None:
    # cascade drops the entity models' governed_access policies with the functions: their tables
    # keep row-level security forced and no policy, so the reader sees none of their rows.
    op.execute(
        """
        drop function if exists rls.withdrawn_subjects() cascade;
        drop function if exists rls.report_include_withdrawn() cascade;
        drop function if exists rls.report_geo_scopes() cascade;
        drop function if exists rls.report_verticals() cascade;
        drop table control.principal_scopes;
        delete from control.principal_roles where role = 'root';
        alter table control.principal_roles drop constraint principal_roles_role_check;
        alter table control.principal_roles add constraint principal_roles_role_check
            check (role in ('viewer', 'analyst', 'manager', 'executive', 'template_owner', 'approver',
                            'tenant_admin', 'platform_admin'));
        alter table control.report_contexts drop column include_withdrawn;
        """
    )
