-- Compliance evidence per tenant, UTC collection day and control: collected, rejected and
-- accepted (not rejected) pieces. Additive over days. A control's newest accepted evidence
-- before an instant is max(day) where evidence_accepted > 0 and day < instant; evidence is
-- valid for 90 days after collection (the auditors' rule, see the metric meta).
select
    tenant_id,
    (collected_at at time zone 'UTC')::date as day,
    control_id,
    count(*)::bigint as evidence_collected,
    count(*) filter (where status = 'rejected')::bigint as evidence_rejected,
    count(*) filter (where status <> 'rejected')::bigint as evidence_accepted
from {{ ref('stg_compliance_evidence') }}
group by 1, 2, 3
