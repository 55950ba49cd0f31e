"""Report contexts: the security context of a report query, kept where the query cannot reach it.

Row-level security used to trust `current_setting('app.tenant_id')`, a setting the reporting
role may change itself (set_config inside a section's SQL). Now the admin connection writes a
context row for one report_reader backend, the reader names it by a random token in a
transaction-local setting, and `rls.report_tenant()` (SECURITY DEFINER, owned by the admin)
returns its tenant only when the row belongs to the calling backend (pid and backend start).
Forging the setting gives nothing: the reader cannot write `control`, and another backend's
token is useless in this one. Verticals, geo scopes and consent (issue 11) are columns here so
the Reporting API's context extends this table, not the design.

Revision ID: 0010
"""
from alembic import op

revision = "0010"
down_revision = "0009"

READER = "report_reader"


def upgrade() -> None:
    op.execute(
        f"""
        -- Unlogged: a context lives for one transaction; a crash should forget them all.
        create unlogged table control.report_contexts (
            token          text primary key default gen_random_uuid()::text,
            backend_pid    integer not null,
            backend_start  timestamptz not null,
            tenant_id      text not null,
            verticals      text[],          -- NULL: no vertical restriction (issue 11)
            geo_scopes     text[],          -- NULL: no geo restriction (issue 11)
            consent_scopes text[],          -- NULL: no consent rule set yet (issue 11)
            created_at     timestamptz not null default now()
        );
        create index report_contexts_backend on control.report_contexts (backend_pid, backend_start);

        create schema if not exists rls;
        revoke all on schema rls from public;
        grant usage on schema rls to {READER};

        -- SECURITY DEFINER with a pinned search_path: runs with the admin's rights, resolves
        -- nothing through a schema the caller controls. Not inlined (definer functions never are),
        -- STABLE so a policy's (select rls.report_tenant()) is one InitPlan per query.
        create or replace function rls.report_tenant() returns text
            language sql stable security definer
            set search_path = pg_catalog, pg_temp
        as $fn$
            select c.tenant_id
            from control.report_contexts c
            join pg_catalog.pg_stat_activity a
              on a.pid = c.backend_pid and a.backend_start = c.backend_start
            where c.token = pg_catalog.current_setting('app.report_context', true)
              and c.backend_pid = pg_catalog.pg_backend_pid()
        $fn$;
        revoke all on function rls.report_tenant() from public;
        grant execute on function rls.report_tenant() to {READER};
        """
    )
    # Tables dbt built before this revision keep trusting app.tenant_id until the next build:
    # re-point their policies now, so an upgraded warehouse is isolated before it is rebuilt.
    op.execute(_repoint("(select rls.report_tenant())"))


def _repoint(using: str) -> str:
    return f"""
        do $up$
        declare r record;
        begin
            for r in select schemaname, tablename from pg_policies where policyname = 'tenant_isolation' loop
                execute 'alter policy tenant_isolation on ' || quote_ident(r.schemaname) || '.'
                        || quote_ident(r.tablename) || ' using (tenant_id = {using.replace("'", "''")})';
            end loop;
        end $up$;
        """


def downgrade() -> None:
    op.execute(_repoint("current_setting('app.tenant_id', true)"))
    op.execute("drop schema rls cascade; drop table control.report_contexts")
