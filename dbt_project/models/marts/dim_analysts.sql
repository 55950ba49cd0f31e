-- SOC analysts for report rows. Email stays in staging: reports name people, they do not
-- hand out their addresses.
select tenant_id, analyst_id, analyst_name, team, hired_at
from {{ ref('stg_analysts') }}
