-- The scopes KPIs are kept for: every tenant, and the platform. Under row-level security a
-- report sees exactly one row, its own, so a KPI report has a row to show for a quiet period.
with

tenants as (
    select * from {{ ref('stg_tenants') }}
),

scopes as (
    select tenant_id from tenants where tenant_id <> '{{ var("platform_tenant") }}'
    union all
    select '{{ var("platform_tenant") }}'
)

select tenant_id from scopes
