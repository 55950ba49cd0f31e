-- ATT&CK technique activity per tenant, UTC day and technique: alerts raised and incidents
-- opened that carry the technique. Additive over days; "seen in a window" is a sum > 0.
with events as (
    select tenant_id, (created_at at time zone 'UTC')::date as day, attack_technique_id as technique_id,
           1 as alerts, 0 as incidents
    from {{ ref('stg_alerts') }}
    where attack_technique_id is not null
    union all
    select tenant_id, (opened_at at time zone 'UTC')::date, attack_technique_id, 0, 1
    from {{ ref('stg_incidents') }}
    where attack_technique_id is not null
)
select
    e.tenant_id,
    e.day,
    e.technique_id,
    coalesce(t.technique_name, 'Unknown technique') as technique_name,
    coalesce(t.tactic, 'unknown') as tactic,
    sum(e.alerts)::bigint as alerts_count,
    sum(e.incidents)::bigint as incidents_count
from events as e
left join {{ ref('stg_attack_techniques') }} as t using (technique_id)
group by 1, 2, 3, 4, 5
