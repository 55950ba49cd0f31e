-- Facilities, one row each, with region, country and vertical (geo reporting).
with

sites as (
    select * from {{ ref('stg_sites') }}
)

select
    site_id,
    tenant_id,
    site_name,
    region,
    country,
    vertical,
    opened_at
from sites
