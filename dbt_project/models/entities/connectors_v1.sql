-- Data source integrations, one row each, with the vertical and region of their home site.
with

connectors as (
    select * from {{ ref('stg_connectors') }}
)

select
    connector_id,
    tenant_id,
    connector_name,
    kind,
    created_at,
    vertical,
    region
from connectors
