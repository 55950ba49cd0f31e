{# Row-level security for a tenant-scoped model, re-applied after every build (a rebuilt
   table is a new table). FORCE makes it apply to the table's owner too. #}
{% macro tenant_rls() -%}
    {{ return(adapter.dispatch('tenant_rls', 'nexus_reports')()) }}
{%- endmacro %}

{% macro default__tenant_rls() -%}
    {{ exceptions.raise_compiler_error("tenant_rls is implemented for postgres only") }}
{%- endmacro %}

{% macro postgres__tenant_rls() -%}
    alter table {{ this }} enable row level security;
    alter table {{ this }} force row level security;
    drop policy if exists tenant_isolation on {{ this }};
    create policy tenant_isolation on {{ this }} for select
        using (tenant_id = current_setting('app.tenant_id', true))
{%- endmacro %}
