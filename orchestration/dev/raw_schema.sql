-- Source tables of the SOC product, as its loaders land them in `raw`.
-- Every tenant-scoped table has tenant_id; `_loaded_at` is when the loader wrote the row
-- (the watermark for freshness and late-arriving data).

create table if not exists raw.tenants (
    tenant_id   text primary key,
    name        text not null,
    plan        text not null,            -- standard | enterprise
    timezone    text not null,            -- IANA name
    created_at  timestamptz not null,
    _loaded_at  timestamptz not null default now()
);

create table if not exists raw.analysts (
    analyst_id  text primary key,         -- '<tenant>-a<nnn>'
    tenant_id   text not null,
    name        text not null,
    email       text not null,
    team        text not null,            -- tier1 | tier2 | threat_hunting | ir
    hired_at    date not null,
    _loaded_at  timestamptz not null default now()
);

create table if not exists raw.attack_techniques (   -- MITRE ATT&CK reference, not tenant-scoped
    technique_id text primary key,        -- e.g. T1566
    name         text not null,
    tactic       text not null
);

create table if not exists raw.incidents (
    incident_id         bigint primary key,
    tenant_id           text not null,
    title               text not null,
    severity            text not null,    -- critical | high | medium | low
    status              text not null,    -- new | acknowledged | in_progress | resolved | closed
    opened_at           timestamptz not null,
    acknowledged_at     timestamptz,      -- null while new
    resolved_at         timestamptz,      -- set iff status in (resolved, closed)
    assignee_id         text,             -- analysts.analyst_id, null while new
    attack_technique_id text,             -- attack_techniques.technique_id
    sla_ack_minutes     integer not null, -- acknowledge target by severity
    sla_resolve_minutes integer not null, -- resolve target by severity
    _loaded_at          timestamptz not null default now()
);

create table if not exists raw.alerts (
    alert_id            bigint primary key,
    tenant_id           text not null,
    incident_id         bigint,           -- null when the alert was not escalated
    connector_id        text not null,
    rule_name           text not null,
    severity            text not null,
    attack_technique_id text,
    created_at          timestamptz not null,
    _loaded_at          timestamptz not null default now()
);

create table if not exists raw.detections (          -- detection rules: ATT&CK coverage
    detection_id  text primary key,
    tenant_id     text not null,
    technique_id  text not null,
    name          text not null,
    enabled       boolean not null,
    created_at    timestamptz not null,
    _loaded_at    timestamptz not null default now()
);

create table if not exists raw.connectors (
    connector_id text primary key,        -- '<tenant>-c<nn>'
    tenant_id    text not null,
    name         text not null,
    kind         text not null,           -- edr | siem | firewall | cloud | identity | email
    created_at   timestamptz not null,
    _loaded_at   timestamptz not null default now()
);

create table if not exists raw.connector_health_events (
    event_id        bigint primary key,
    tenant_id       text not null,
    connector_id    text not null,
    observed_at     timestamptz not null,
    status          text not null,        -- healthy | degraded | down
    latency_ms      integer not null,
    events_ingested bigint not null,
    _loaded_at      timestamptz not null default now()
);

create table if not exists raw.compliance_controls (
    tenant_id   text not null,
    control_id  text not null,            -- e.g. 'SOC2-CC6.1'
    framework   text not null,            -- SOC2 | ISO27001 | NIST-CSF
    title       text not null,
    owner_id    text,                     -- analysts.analyst_id
    _loaded_at  timestamptz not null default now(),
    primary key (tenant_id, control_id)
);

create table if not exists raw.compliance_evidence (
    evidence_id   bigint primary key,
    tenant_id     text not null,
    control_id    text not null,
    collected_at  timestamptz not null,
    status        text not null,          -- valid | expired | rejected
    reviewer_id   text,
    _loaded_at    timestamptz not null default now()
);

-- Governed row-level data (issue 11): every row belongs to a vertical (business line or
-- programme) and a region; some incidents concern a person (a subject) whose consent decides
-- whether their rows may be reported. Warehouses seeded before these columns existed get them
-- here (the seed truncates and reloads right after).
alter table raw.incidents add column if not exists vertical text;
alter table raw.incidents add column if not exists region text;
alter table raw.incidents add column if not exists site_id text;                -- sites.site_id
alter table raw.incidents add column if not exists suspension_status text not null default 'active';  -- active | suspended
alter table raw.incidents add column if not exists suspension_reason text;      -- null unless suspended
alter table raw.incidents add column if not exists subject_id text;             -- subjects.subject_id, null: nobody
alter table raw.alerts add column if not exists vertical text;
alter table raw.alerts add column if not exists region text;
alter table raw.connectors add column if not exists vertical text;
alter table raw.connectors add column if not exists region text;
alter table raw.compliance_controls add column if not exists vertical text;
alter table raw.compliance_controls add column if not exists region text;

create table if not exists raw.sites (                 -- facilities
    site_id     text primary key,         -- '<tenant>-site<nn>'
    tenant_id   text not null,
    name        text not null,
    region      text not null,            -- emea | amer | apac
    country     text not null,            -- ISO 3166-1 alpha-2
    vertical    text not null,
    opened_at   timestamptz not null,
    _loaded_at  timestamptz not null default now()
);

create table if not exists raw.subjects (              -- the people cases and programmes concern
    subject_id  text primary key,         -- '<tenant>-p<nnnn>'
    tenant_id   text not null,
    pseudonym   text not null,
    site_id     text not null,
    vertical    text not null,
    region      text not null,
    enrolled_at timestamptz not null,
    _loaded_at  timestamptz not null default now()
);

-- Consent history: the latest event (changed_at, then event_id) of a subject decides.
create table if not exists raw.consent_events (
    event_id    bigint generated by default as identity primary key,
    tenant_id   text not null,
    subject_id  text not null,
    state       text not null check (state in ('granted', 'withdrawn')),
    changed_at  timestamptz not null,
    reason      text,
    _loaded_at  timestamptz not null default now()
);
-- rls.withdrawn_subjects() reads this live on every governed report query.
create index if not exists consent_events_latest
    on raw.consent_events (tenant_id, subject_id, changed_at desc, event_id desc);

create table if not exists raw.awareness_measurements (  -- security-awareness programme, per subject
    measurement_id   bigint primary key,
    tenant_id        text not null,
    subject_id       text not null,
    programme        text not null,       -- phishing_simulation | security_training
    measured_at      timestamptz not null,
    measurement_type text not null,       -- baseline | follow_up | outcome
    score            numeric(5, 1) not null,  -- 0-100
    clicked          boolean not null,    -- clicked the simulated phishing link
    reported         boolean not null,    -- reported the simulated phishing mail
    vertical         text not null,
    region           text not null,
    _loaded_at       timestamptz not null default now()
);

-- The loader watermark per tenant: every run reads max(_loaded_at) of its tenant (freshness),
-- and the corrections sensor counts rows loaded after each published run's watermark (late
-- data). Without these, both scan the whole table once per run and source: a month-end
-- fan-out over 200 tenants read the incidents table about six times per run.
create index if not exists analysts_tenant_loaded on raw.analysts (tenant_id, _loaded_at);
create index if not exists incidents_tenant_loaded on raw.incidents (tenant_id, _loaded_at);
create index if not exists alerts_tenant_loaded on raw.alerts (tenant_id, _loaded_at);
create index if not exists detections_tenant_loaded on raw.detections (tenant_id, _loaded_at);
create index if not exists connectors_tenant_loaded on raw.connectors (tenant_id, _loaded_at);
create index if not exists connector_health_events_tenant_loaded on raw.connector_health_events (tenant_id, _loaded_at);
create index if not exists compliance_controls_tenant_loaded on raw.compliance_controls (tenant_id, _loaded_at);
create index if not exists compliance_evidence_tenant_loaded on raw.compliance_evidence (tenant_id, _loaded_at);
create index if not exists sites_tenant_loaded on raw.sites (tenant_id, _loaded_at);
create index if not exists subjects_tenant_loaded on raw.subjects (tenant_id, _loaded_at);
create index if not exists consent_events_tenant_loaded on raw.consent_events (tenant_id, _loaded_at);
create index if not exists awareness_measurements_tenant_loaded on raw.awareness_measurements (tenant_id, _loaded_at);
