-- Detection rules per tenant, UTC creation day and ATT&CK technique. A technique is covered
-- at an instant when an enabled rule created before it exists: sum(detections_enabled) over
-- the days before the instant > 0. `enabled` is the rule's current state (the source keeps no
-- history of toggles), so coverage of a past window reflects today's enablement.
select
    d.tenant_id,
    (d.created_at at time zone 'UTC')::date as day,
    d.technique_id,
    coalesce(t.technique_name, 'Unknown technique') as technique_name,
    coalesce(t.tactic, 'unknown') as tactic,
    count(*)::bigint as detections_created,
    count(*) filter (where d.enabled)::bigint as detections_enabled
from {{ ref('stg_detections') }} as d
left join {{ ref('stg_attack_techniques') }} as t using (technique_id)
group by 1, 2, 3, 4, 5
