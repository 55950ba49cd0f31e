-- Deliveries, link denials and policy violation attempts, each once for its tenant (when it has
-- one) and once for the platform, by UTC day, as one stream of (kind, dimension, flagged) facts:
-- flagged is "sent" for a delivery and "the run's files are confidential or restricted" for a denial.
-- A denial's reason is reduced to a bounded category with the patterns of
-- orchestration/kpis/denials.py (Python's re.match anchors at the start: hence the '^').
with

deliveries as (
    select * from {{ source('control', 'deliveries') }}
),

access_events as (
    select * from {{ source('control', 'access_events') }}
),

artifacts as (
    select * from {{ source('control', 'artifacts') }}
),

audit_log as (
    select * from {{ source('control', 'audit_log') }}
),

security_events as (
    select * from {{ source('control', 'security_events') }}
),

run_sensitivity as (
    -- the most sensitive file a run published
    select run_id,
           (array_agg(sensitivity order by array_position(array['internal', 'confidential', 'restricted'], sensitivity) desc))[1]
               as sensitivity
    from artifacts
    group by run_id
),

delivery_facts as (
    select tenant_id, created_at as at, 'delivery' as kind, channel as dimension,
           status = 'sent' as flagged
    from deliveries
    where status in ('sent', 'failed_transient', 'failed_permanent')
),

denial_facts as (
    select e.tenant_id, e.at, 'denial' as kind,
           case
               when e.reason ~ '^granted$' then 'granted'
               when e.reason ~ '^unknown token$' then 'unknown_token'
               when e.reason ~ '^revoked ' then 'revoked'
               when e.reason ~ '^link expired ' then 'expired'
               when e.reason ~ '^run tenant .* differs ' then 'tenant_mismatch'
               when e.reason ~ '^artifact unavailable' then 'artifact_unavailable'
               when e.reason ~ '^method \S+ not allowed$' then 'method_not_allowed'
               when e.reason ~ '^run \S+ is \w+$' then 'run_not_completed'
               when e.reason ~ '^.*(has none of the roles|is not a member of tenant|is deactivated|unknown principal)'
                   then 'not_allowed'
               else 'other'
           end as dimension,
           coalesce(s.sensitivity in ('confidential', 'restricted'), false) as flagged
    from access_events as e
    left join run_sensitivity as s on s.run_id = e.run_id
    where e.outcome = 'denied'
),

violation_facts as (
    select tenant_id, at, 'violation' as kind, 'refused_distribution' as dimension, false as flagged
    from audit_log
    where action in ('delivery.refused', 'delivery.approve.denied')
    union all
    select tenant_id, at, 'violation', 'tenant_mismatch', false
    from security_events
    where kind = 'tenant_mismatch'
),

facts as (
    select * from delivery_facts
    union all
    select * from denial_facts
    union all
    select * from violation_facts
),

scoped as (
    select tenant_id, at, kind, dimension, flagged
    from facts where tenant_id is not null and tenant_id <> '{{ var("platform_tenant") }}'
    union all
    select '{{ var("platform_tenant") }}', at, kind, dimension, flagged from facts
)

select
    tenant_id,
    (at at time zone 'UTC')::date as day,
    kind,
    dimension,
    flagged
from scoped
