{# Row-level security for a tenant-scoped model, re-applied after every build (a rebuilt
   table is a new table). FORCE makes it apply to the table's owner too.
   The tenant comes from rls.report_tenant() (migration 0010): the context the admin wrote for
   the calling report_reader backend, which nothing inside a report query can change. Never
   from a setting such as app.tenant_id, which the reporting role may set itself.
   (select ...) makes it one InitPlan per query instead of a call per row. #}
{% macro tenant_rls() -%}
    {{ return(adapter.dispatch('tenant_rls', 'nexus_reports')()) }}
{%- endmacro %}

{% macro default__tenant_rls() -%}
    {{ exceptions.raise_compiler_error("tenant_rls is implemented for postgres only") }}
{%- endmacro %}

{% macro postgres__tenant_rls() -%}
    do $$ begin
        if to_regprocedure('rls.report_tenant()') is null then
            raise exception 'rls.report_tenant() is missing: run `nexus-reports init` (migrations) before dbt';
        end if;
    end $$;
    alter table {{ this }} enable row level security;
    alter table {{ this }} force row level security;
    drop policy if exists tenant_isolation on {{ this }};
    create policy tenant_isolation on {{ this }} for select
        using (tenant_id = (select rls.report_tenant()))
{%- endmacro %}
