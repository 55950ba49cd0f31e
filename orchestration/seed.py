"""Deterministic sample SOC source data, streamed into `raw` with COPY.

The same arguments always give byte-identical tables: every random choice comes from
`random.Random` seeded by the arguments, never from the clock. Rows are generated lazily and
fed to COPY through a small file-like reader, so 1,000,000 incidents never sit in memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

RAW_SCHEMA_SQL = Path(__file__).with_name("raw_schema.sql")

NAMED_TENANTS = [
    ("acme", "Acme Corp"), ("globex", "Globex Corporation"), ("initech", "Initech"),
    ("umbrella", "Umbrella Security"), ("hooli", "Hooli"), ("stark", "Stark Industries"),
    ("wayne", "Wayne Enterprises"), ("wonka", "Wonka Industries"),
]
TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]
SEVERITIES = ["critical", "high", "medium", "low"]
SEVERITY_WEIGHTS = [5, 20, 40, 35]
SLA_ACK_MINUTES = {"critical": 15, "high": 60, "medium": 240, "low": 1440}
SLA_RESOLVE_MINUTES = {"critical": 240, "high": 1440, "medium": 4320, "low": 10080}
TEAMS = ["tier1", "tier2", "threat_hunting", "ir"]
CONNECTOR_KINDS = ["edr", "siem", "firewall", "cloud", "identity", "email"]
WINDOW_DAYS = 182

# MITRE ATT&CK techniques (id, name, tactic): the reference the incidents and detections use.
TECHNIQUES = [
    ("T1566", "Phishing", "initial-access"),
    ("T1078", "Valid Accounts", "defense-evasion"),
    ("T1110", "Brute Force", "credential-access"),
    ("T1059", "Command and Scripting Interpreter", "execution"),
    ("T1190", "Exploit Public-Facing Application", "initial-access"),
    ("T1486", "Data Encrypted for Impact", "impact"),
    ("T1071", "Application Layer Protocol", "command-and-control"),
    ("T1021", "Remote Services", "lateral-movement"),
    ("T1003", "OS Credential Dumping", "credential-access"),
    ("T1055", "Process Injection", "defense-evasion"),
    ("T1547", "Boot or Logon Autostart Execution", "persistence"),
    ("T1053", "Scheduled Task/Job", "persistence"),
    ("T1105", "Ingress Tool Transfer", "command-and-control"),
    ("T1027", "Obfuscated Files or Information", "defense-evasion"),
    ("T1204", "User Execution", "execution"),
    ("T1133", "External Remote Services", "initial-access"),
    ("T1098", "Account Manipulation", "persistence"),
    ("T1136", "Create Account", "persistence"),
    ("T1048", "Exfiltration Over Alternative Protocol", "exfiltration"),
    ("T1567", "Exfiltration Over Web Service", "exfiltration"),
    ("T1041", "Exfiltration Over C2 Channel", "exfiltration"),
    ("T1082", "System Information Discovery", "discovery"),
    ("T1083", "File and Directory Discovery", "discovery"),
    ("T1018", "Remote System Discovery", "discovery"),
    ("T1046", "Network Service Discovery", "discovery"),
    ("T1087", "Account Discovery", "discovery"),
    ("T1069", "Permission Groups Discovery", "discovery"),
    ("T1562", "Impair Defenses", "defense-evasion"),
    ("T1070", "Indicator Removal", "defense-evasion"),
    ("T1036", "Masquerading", "defense-evasion"),
    ("T1218", "System Binary Proxy Execution", "defense-evasion"),
    ("T1112", "Modify Registry", "defense-evasion"),
    ("T1543", "Create or Modify System Process", "persistence"),
    ("T1068", "Exploitation for Privilege Escalation", "privilege-escalation"),
    ("T1548", "Abuse Elevation Control Mechanism", "privilege-escalation"),
    ("T1558", "Steal or Forge Kerberos Tickets", "credential-access"),
    ("T1552", "Unsecured Credentials", "credential-access"),
    ("T1114", "Email Collection", "collection"),
    ("T1560", "Archive Collected Data", "collection"),
    ("T1489", "Service Stop", "impact"),
]
TITLE_TEMPLATES = ["{name} activity detected", "Suspected {name}", "{name} alert escalated",
                   "Possible {name} on host", "{name} reported by user"]
# Text that export code must carry byte-exact and render harmless.
TRICKY_TITLES = [
    '=HYPERLINK("http://example.invalid","click")',
    "+cmd|' /C calc'!A0",
    "-2+3 suspicious sum",
    "@SUM(A1:A9) in mail subject",
    'Quote "inside", and a comma',
    "Line one\nline two",
    "Zugriff verweigert — ü ß 日本",
]
CONTROLS = [
    ("SOC2", "CC6.1", "Logical access security"), ("SOC2", "CC6.2", "User registration and authorization"),
    ("SOC2", "CC6.3", "Role-based access removal"), ("SOC2", "CC6.6", "Boundary protection"),
    ("SOC2", "CC6.7", "Data transmission protection"), ("SOC2", "CC7.1", "Vulnerability detection"),
    ("SOC2", "CC7.2", "Security event monitoring"), ("SOC2", "CC7.3", "Incident evaluation"),
    ("SOC2", "CC7.4", "Incident response"), ("SOC2", "CC7.5", "Incident recovery"),
    ("ISO27001", "A.5.15", "Access control"), ("ISO27001", "A.5.24", "Incident management planning"),
    ("ISO27001", "A.5.25", "Assessment of security events"), ("ISO27001", "A.5.26", "Response to incidents"),
    ("ISO27001", "A.8.15", "Logging"), ("ISO27001", "A.8.16", "Monitoring activities"),
    ("ISO27001", "A.8.8", "Management of technical vulnerabilities"), ("ISO27001", "A.8.7", "Protection against malware"),
    ("NIST-CSF", "DE.CM-01", "Networks are monitored"), ("NIST-CSF", "DE.AE-02", "Adverse events are analyzed"),
    ("NIST-CSF", "RS.MA-01", "Incident response plan is executed"), ("NIST-CSF", "RS.AN-03", "Incident analysis"),
    ("NIST-CSF", "PR.AA-01", "Identities and credentials are managed"), ("NIST-CSF", "PR.PS-04", "Log records are generated"),
    ("NIST-CSF", "ID.RA-01", "Vulnerabilities are identified"), ("NIST-CSF", "RC.RP-01", "Recovery plan is executed"),
    ("NIST-CSF", "GV.RM-01", "Risk management objectives"), ("NIST-CSF", "DE.CM-09", "Computing hardware is monitored"),
    ("NIST-CSF", "PR.DS-01", "Data at rest is protected"), ("NIST-CSF", "PR.DS-02", "Data in transit is protected"),
]
FIRST_NAMES = ["Ada", "Ben", "Chen", "Dana", "Emre", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kofi", "Lena",
               "Mia", "Noah", "Olu", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Victor", "Wen", "Yara"]
LAST_NAMES = ["Adams", "Brown", "Costa", "Dubois", "Eze", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
              "Kim", "Lopez", "Meyer", "Novak", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Weber"]

TABLES = ["tenants", "analysts", "attack_techniques", "incidents", "alerts", "detections", "connectors",
          "connector_health_events", "compliance_controls", "compliance_evidence"]


def tenant_ids(n: int) -> list[str]:
    return [NAMED_TENANTS[i][0] if i < len(NAMED_TENANTS) else f"tenant-{i + 1:03d}" for i in range(n)]


def default_end_date(today: dt.date | None = None) -> dt.date:
    today = today or dt.datetime.now(dt.timezone.utc).date()
    return today.replace(day=1)


class _IterReader(io.RawIOBase):
    """A read()-able stream over an iterator of text lines, for copy_expert."""

    def __init__(self, lines: Iterable[str]):
        self._chunks = (line.encode() for line in _batched(lines))
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while len(self._buffer) < len(target):
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def _batched(lines: Iterable[str], size: int = 2000) -> Iterator[str]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def _csv_lines(rows: Iterable[tuple]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _ts(epoch: int) -> str:
    """Epoch seconds -> PostgreSQL timestamptz text, UTC."""
    return (_EPOCH + dt.timedelta(seconds=epoch)).strftime("%Y-%m-%d %H:%M:%S+00")


def _epoch(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())


def _copy(cur, table: str, columns: list[str], rows: Iterable[tuple]) -> int:
    cur.copy_expert(
        f"copy raw.{table} ({', '.join(columns)}) from stdin with (format csv)",
        io.BufferedReader(_IterReader(_csv_lines(rows)), buffer_size=1 << 20),
    )
    return cur.rowcount


class _World:
    """Per-tenant reference data every generator shares."""

    def __init__(self, n_tenants: int, seed: int, end: dt.date):
        rng = random.Random(f"{seed}:world")
        self.end = end
        self.end_epoch = _epoch(end)
        self.start_epoch = self.end_epoch - WINDOW_DAYS * 86400
        self.tenants = []
        for i, tenant in enumerate(tenant_ids(n_tenants)):
            name = NAMED_TENANTS[i][1] if i < len(NAMED_TENANTS) else f"Tenant {i + 1:03d} Ltd"
            self.tenants.append({
                "id": tenant,
                "name": name,
                "plan": rng.choice(["standard", "enterprise"]),
                "timezone": TIMEZONES[i % len(TIMEZONES)],
                "weight": rng.uniform(0.5, 2.0),
                "analysts": [f"{tenant}-a{j:03d}" for j in range(1, rng.randint(8, 40) + 1)],
                "connectors": [f"{tenant}-c{j:02d}" for j in range(1, rng.randint(5, 12) + 1)],
            })


def _tenant_rows(world: _World) -> Iterator[tuple]:
    created = _ts(world.start_epoch - 400 * 86400)
    loaded = _ts(world.start_epoch - 399 * 86400)
    for t in world.tenants:
        yield (t["id"], t["name"], t["plan"], t["timezone"], created, loaded)


def _analyst_rows(world: _World, seed: int) -> Iterator[tuple]:
    rng = random.Random(f"{seed}:analysts")
    for t in world.tenants:
        domain = f"{t['id']}.example.com"
        for analyst in t["analysts"]:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            hired = world.end - dt.timedelta(days=rng.randint(200, 2500))
            yield (analyst, t["id"], f"{first} {last}", f"{first.lower()}.{last.lower()}@{domain}",
                   rng.choice(TEAMS), hired.isoformat(), _ts(world.start_epoch - 86400))


def _incident_draws(world: _World, n: int, seed: int) -> Iterator[tuple]:
    """The random facts of every incident, as numbers; incidents and alerts both derive from it."""
    rng = random.Random(f"{seed}:incidents")
    random_ = rng.random
    lognormvariate = rng.lognormvariate
    tenants = world.tenants
    span = world.end_epoch - world.start_epoch
    tenant_choices = rng.choices(range(len(tenants)), cum_weights=list(_cumulative(t["weight"] for t in tenants)), k=n)
    severity_choices = rng.choices(SEVERITIES, cum_weights=list(_cumulative(SEVERITY_WEIGHTS)), k=n)
    technique_cum = list(_cumulative(1.0 / (i + 1) ** 0.9 for i in range(len(TECHNIQUES))))
    technique_choices = rng.choices(range(len(TECHNIQUES)), cum_weights=technique_cum, k=n)
    ack_mu = {s: math.log(m * 60 * 0.5) for s, m in SLA_ACK_MINUTES.items()}
    res_mu = {s: math.log(m * 60 * 0.6) for s, m in SLA_RESOLVE_MINUTES.items()}
    for i in range(n):
        severity = severity_choices[i]
        opened = world.start_epoch + int(random_() * span)
        ack = opened + int(lognormvariate(ack_mu[severity], 0.8)) + 1
        resolved = ack + int(lognormvariate(res_mu[severity], 0.7)) + 60
        yield (i + 1, tenant_choices[i], severity, technique_choices[i], opened, ack, resolved,
               random_(), random_(), random_(), random_())


def _incident_rows(world: _World, n: int, seed: int) -> Iterator[tuple]:
    end_epoch = world.end_epoch
    tenants = world.tenants
    for incident_id, t_index, severity, tech_index, opened, ack, resolved, r1, r2, r3, r4 in _incident_draws(world, n, seed):
        tenant = tenants[t_index]
        tech_id, tech_name, _ = TECHNIQUES[tech_index]
        analysts = tenant["analysts"]
        if ack >= end_epoch:
            status, ack_ts, res_ts, assignee, last_change = "new", "", "", "", opened
        elif resolved >= end_epoch or r1 < 0.03:  # still being worked on
            status = "acknowledged" if r2 < 0.4 else "in_progress"
            ack_ts, res_ts, last_change = _ts(ack), "", ack
            assignee = analysts[int(r3 * len(analysts))]
        else:
            status = "closed" if r2 < 0.6 else "resolved"
            ack_ts, res_ts, last_change = _ts(ack), _ts(resolved), resolved
            assignee = analysts[int(r3 * len(analysts))]
        if r4 < 0.002:
            title = TRICKY_TITLES[int(r4 * 500 * len(TRICKY_TITLES))]
        else:
            title = TITLE_TEMPLATES[int(r4 * len(TITLE_TEMPLATES))].format(name=tech_name)
        loaded = min(last_change + 60 + int(r3 * 1740), end_epoch - 1)
        yield (incident_id, tenant["id"], title, severity, status, _ts(opened), ack_ts, res_ts, assignee,
               tech_id, SLA_ACK_MINUTES[severity], SLA_RESOLVE_MINUTES[severity], _ts(loaded))


def _cumulative(weights: Iterable[float]) -> Iterator[float]:
    total = 0.0
    for w in weights:
        total += w
        yield total


def _alert_rows(world: _World, n_incidents: int, seed: int) -> Iterator[tuple]:
    """1-3 alerts shortly before each incident opened, plus alerts that were never escalated."""
    rng = random.Random(f"{seed}:alerts")
    random_ = rng.random
    tenants = world.tenants
    rules = ["{} detection rule", "{} correlation", "{} anomaly", "{} signature"]
    alert_id = 0
    span = world.end_epoch - world.start_epoch - 3600
    for incident_id, t_index, severity, tech_index, opened, *_ in _incident_draws(world, n_incidents, seed):
        tenant = tenants[t_index]
        connectors = tenant["connectors"]
        tech_id, tech_name, _ = TECHNIQUES[tech_index]
        for _ in range(1 + int(random_() * 3)):
            alert_id += 1
            created = opened - int(random_() * 1800) - 1
            yield (alert_id, tenant["id"], incident_id, connectors[int(random_() * len(connectors))],
                   rules[int(random_() * 4)].format(tech_name), severity, tech_id, _ts(created), _ts(created + 90))
        if random_() < 0.4:
            alert_id += 1
            created = world.start_epoch + int(random_() * span)
            yield (alert_id, tenant["id"], "", connectors[int(random_() * len(connectors))],
                   rules[int(random_() * 4)].format(tech_name), "low", tech_id, _ts(created), _ts(created + 90))


def _detection_rows(world: _World, seed: int) -> Iterator[tuple]:
    rng = random.Random(f"{seed}:detections")
    for t in world.tenants:
        covered = rng.sample(range(len(TECHNIQUES)), k=rng.randint(len(TECHNIQUES) // 3, len(TECHNIQUES) * 3 // 4))
        for j, index in enumerate(sorted(covered)):
            tech_id, tech_name, _ = TECHNIQUES[index]
            created = world.start_epoch - rng.randint(1, 300) * 86400
            yield (f"{t['id']}-d{j + 1:03d}", t["id"], tech_id, f"Detect {tech_name}", rng.random() > 0.1,
                   _ts(created), _ts(created + 60))


def _connector_rows(world: _World, seed: int) -> Iterator[tuple]:
    rng = random.Random(f"{seed}:connectors")
    for t in world.tenants:
        for connector in t["connectors"]:
            kind = rng.choice(CONNECTOR_KINDS)
            created = world.start_epoch - rng.randint(30, 700) * 86400
            yield (connector, t["id"], f"{kind.upper()} {connector.rsplit('-', 1)[1]}", kind, _ts(created), _ts(created + 60))


def _health_rows(world: _World, seed: int) -> Iterator[tuple]:
    """Hourly health per connector over the last 30 days, with outage streaks."""
    rng = random.Random(f"{seed}:health")
    event_id = 0
    hours = 30 * 24
    first = world.end_epoch - hours * 3600
    for t in world.tenants:
        for connector in t["connectors"]:
            base_latency = rng.randint(20, 400)
            volume = rng.randint(1_000, 200_000)
            outage_left = 0
            for h in range(hours):
                event_id += 1
                if outage_left == 0 and rng.random() < 0.004:
                    outage_left = rng.randint(1, 12)
                if outage_left:
                    outage_left -= 1
                    status, latency, events = "down", 0, 0
                elif rng.random() < 0.03:
                    status, latency, events = "degraded", base_latency * rng.randint(3, 10), int(volume * rng.uniform(0.1, 0.6))
                else:
                    status, latency, events = "healthy", int(base_latency * rng.uniform(0.7, 1.3)), int(volume * rng.uniform(0.8, 1.2))
                observed = first + h * 3600
                yield (event_id, t["id"], connector, _ts(observed), status, latency, events, _ts(observed + 120))


def _control_rows(world: _World, seed: int) -> Iterator[tuple]:
    rng = random.Random(f"{seed}:controls")
    for t in world.tenants:
        for framework, control, title in sorted(rng.sample(CONTROLS, k=rng.randint(15, len(CONTROLS)))):
            yield (t["id"], f"{framework}-{control}", framework, title, rng.choice(t["analysts"]),
                   _ts(world.start_epoch - 86400))


def _evidence_rows(world: _World, seed: int) -> Iterator[tuple]:
    rng = random.Random(f"{seed}:evidence")
    evidence_id = 0
    span = world.end_epoch - world.start_epoch - 3600
    for t_id, control_id, *_ in _control_rows(world, seed):
        analysts = next(t["analysts"] for t in world.tenants if t["id"] == t_id)
        for _ in range(rng.randint(2, 8)):
            evidence_id += 1
            collected = world.start_epoch + int(rng.random() * span)
            status = rng.choices(["valid", "expired", "rejected"], weights=[80, 12, 8])[0]
            yield (evidence_id, t_id, control_id, _ts(collected), status, rng.choice(analysts), _ts(collected + 600))


def seed(conn, *, tenants: int = 3, incidents: int = 20_000, seed: int = 42,
         end_date: dt.date | None = None) -> dict[str, int]:
    """Replace the raw tables with deterministic sample data; returns rows per table."""
    if tenants < 1 or incidents < 0:
        raise ValueError("need at least one tenant and a non-negative number of incidents")
    end = end_date or default_end_date()
    world = _World(tenants, seed, end)
    counts: dict[str, int] = {}
    with conn, conn.cursor() as cur:
        cur.execute(RAW_SCHEMA_SQL.read_text())
        cur.execute("truncate " + ", ".join(f"raw.{t}" for t in TABLES))
        loads = [
            ("tenants", ["tenant_id", "name", "plan", "timezone", "created_at", "_loaded_at"], _tenant_rows(world)),
            ("analysts", ["analyst_id", "tenant_id", "name", "email", "team", "hired_at", "_loaded_at"],
             _analyst_rows(world, seed)),
            ("attack_techniques", ["technique_id", "name", "tactic"], iter(TECHNIQUES)),
            ("incidents", ["incident_id", "tenant_id", "title", "severity", "status", "opened_at", "acknowledged_at",
                           "resolved_at", "assignee_id", "attack_technique_id", "sla_ack_minutes",
                           "sla_resolve_minutes", "_loaded_at"], _incident_rows(world, incidents, seed)),
            ("alerts", ["alert_id", "tenant_id", "incident_id", "connector_id", "rule_name", "severity",
                        "attack_technique_id", "created_at", "_loaded_at"], _alert_rows(world, incidents, seed)),
            ("detections", ["detection_id", "tenant_id", "technique_id", "name", "enabled", "created_at", "_loaded_at"],
             _detection_rows(world, seed)),
            ("connectors", ["connector_id", "tenant_id", "name", "kind", "created_at", "_loaded_at"],
             _connector_rows(world, seed)),
            ("connector_health_events", ["event_id", "tenant_id", "connector_id", "observed_at", "status",
                                         "latency_ms", "events_ingested", "_loaded_at"], _health_rows(world, seed)),
            ("compliance_controls", ["tenant_id", "control_id", "framework", "title", "owner_id", "_loaded_at"],
             _control_rows(world, seed)),
            ("compliance_evidence", ["evidence_id", "tenant_id", "control_id", "collected_at", "status",
                                     "reviewer_id", "_loaded_at"], _evidence_rows(world, seed)),
        ]
        for table, columns, rows in loads:
            counts[table] = _copy(cur, table, columns, rows)
        for table in TABLES:
            cur.execute(f"analyze raw.{table}")
    return counts
