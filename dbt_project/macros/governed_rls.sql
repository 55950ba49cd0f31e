{# Row-level security for a governed entity model (models/entities/), re-applied after every
   build. Like tenant_rls (which the metric models keep), every value comes from the report
   context the admin wrote for the calling report_reader backend (migrations 0010 and 0012),
   which nothing inside a report query can change:
     - the tenant: rls.report_tenant();
     - verticals and regions: rls.report_verticals() / rls.report_geo_scopes(), NULL = no restriction;
     - consent, for models with a subject_id: a row about a subject whose latest consent event is
       'withdrawn' is hidden unless the context includes withdrawn subjects (root only).
       rls.withdrawn_subjects() reads raw.consent_events live: a withdrawal counts on the next
       query, not at the next build.
   Each function is wrapped in (select ...): one InitPlan per query, never a call per row; the
   ::text[] cast makes `= any(...)` read the array, not a subquery's rows. #}
{% macro governed_rls() -%}
    {{ return(adapter.dispatch('governed_rls', 'nexus_reports')()) }}
{%- endmacro %}

{% macro default__governed_rls() -%}
    {{ exceptions.raise_compiler_error("governed_rls is implemented for postgres only") }}
{%- endmacro %}

{% macro postgres__governed_rls() -%}
    {#- The contract's columns are known when the hook runs (not while dbt parses). -#}
    {%- set columns = model.columns.keys() | list -%}
    {%- for required in ['tenant_id', 'vertical', 'region'] -%}
        {%- if execute and required not in columns -%}
            {{ exceptions.raise_compiler_error("governed_rls: model " ~ model.name ~ " has no " ~ required ~ " column in its contract") }}
        {%- endif -%}
    {%- endfor -%}
    do $$ begin
        if to_regprocedure('rls.withdrawn_subjects()') is null then
            raise exception 'rls.withdrawn_subjects() is missing: run `nexus-reports init` (migrations) before dbt';
        end if;
    end $$;
    alter table {{ this }} enable row level security;
    alter table {{ this }} force row level security;
    drop policy if exists tenant_isolation on {{ this }};
    drop policy if exists governed_access on {{ this }};
    create policy governed_access on {{ this }} for select
        using (
            tenant_id = (select rls.report_tenant())
            and ((select rls.report_verticals()) is null or vertical = any((select rls.report_verticals())::text[]))
            and ((select rls.report_geo_scopes()) is null or region = any((select rls.report_geo_scopes())::text[]))
            {%- if 'subject_id' in columns %}
            and (subject_id is null
                 or (select rls.report_include_withdrawn())
                 or subject_id <> all((select rls.withdrawn_subjects())::text[]))
            {%- endif %}
        )
{%- endmacro %}
