-- Compliance controls each tenant reports on, with the owning analyst's name.
select c.tenant_id, c.control_id, c.framework, c.control_title, c.owner_id, a.analyst_name as owner_name
from {{ ref('stg_compliance_controls') }} as c
left join {{ ref('stg_analysts') }} as a
    on a.analyst_id = c.owner_id and a.tenant_id = c.tenant_id
