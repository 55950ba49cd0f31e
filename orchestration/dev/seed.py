"""Deterministic sample SOC source data, streamed into `raw` with COPY.

The same arguments always give byte-identical tables: every random choice comes from a
`random.Random` seeded by the arguments (one stream per table), never from the clock or the
global generator. Rows are generated lazily, formatted as CSV in chunks of about 1 MB and fed
to `COPY ... FROM STDIN` by a small reader whose `read()` pulls the next chunk, so a million
incidents never sit in memory; the server parses one chunk while Python formats the next.
The hot loops format precomputed strings (quoted titles, per-day date prefixes, all 86,400
times of day) and draw weighted choices from lookup tables, so 1,000,000 incidents with their
alerts load in seconds.

The story the data tells, as of "now" = midnight UTC at the start of `end_date`:

* incidents open over the 182 days before `end_date`, more on weekdays and in European/US
  working hours, slowly growing, with a few campaign bursts; ids follow opening time;
* tenants differ in volume, technique mix and response speed; acknowledge and resolve delays
  are lognormal around a fraction of the SLA, so some incidents breach it; recent incidents
  are still new or open, and a small backlog never gets resolved;
* each incident has 1-3 alerts raised shortly before it opened, plus alerts that were never
  escalated (about 20% of all alerts); hourly connector health over the last 30 days with
  outage streaks; compliance evidence collected on a cadence, older evidence expired.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
import math
import random
import statistics
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path

RAW_SCHEMA_SQL = Path(__file__).with_name("raw_schema.sql")

WINDOW_DAYS = 182           # incidents open in [end_date - WINDOW_DAYS, end_date)
HEALTH_DAYS = 30            # hourly connector health over the last HEALTH_DAYS days
CHUNK_BYTES = 1 << 20       # COPY data is sent in chunks of about this size

NAMED_TENANTS = [
    # (tenant_id, name, plan, timezone)
    ("acme", "Acme Corp", "enterprise", "America/New_York"),
    ("globex", "Globex Corporation", "standard", "Europe/Berlin"),
    ("initech", "Initech", "standard", "UTC"),
    ("umbrella", "Umbrella Corporation", "enterprise", "Asia/Tokyo"),
    ("hooli", "Hooli", "standard", "America/New_York"),
    ("stark", "Stark Industries", "enterprise", "UTC"),
    ("wayne", "Wayne Enterprises", "enterprise", "America/New_York"),
    ("wonka", "Wonka Industries", "standard", "Europe/Berlin"),
]
TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]
PLANS = ["standard", "enterprise"]

SEVERITIES = ["critical", "high", "medium", "low"]
SEVERITY_WEIGHTS = [5, 20, 40, 35]
SLA_ACK_MINUTES = {"critical": 15, "high": 60, "medium": 240, "low": 1440}
SLA_RESOLVE_MINUTES = {"critical": 240, "high": 1440, "medium": 4320, "low": 10080}
ACK_MEDIAN_OF_SLA, ACK_SIGMA = 0.35, 0.80          # ~10% of acknowledgements breach at factor 1
RESOLVE_MEDIAN_OF_SLA, RESOLVE_SIGMA = 0.50, 0.75  # ~18% of resolutions breach at factor 1
STUCK_SHARE = 0.015         # acknowledged incidents that are never resolved (the backlog)
CLOSED_AFTER_SECONDS = 3 * 86400  # resolved incidents older than this are mostly closed
TRICKY_TITLE_SHARE = 0.002  # about 1 in 500 titles is text that breaks naive exports

TEAMS = ["tier1", "tier2", "threat_hunting", "ir"]
TEAM_WEIGHTS = [45, 25, 12, 18]
CONNECTOR_KINDS = ["edr", "siem", "firewall", "cloud", "identity", "email"]
CONNECTOR_PRODUCTS = {
    "edr": ["CrowdStrike Falcon", "Microsoft Defender for Endpoint", "SentinelOne Singularity"],
    "siem": ["Splunk Enterprise Security", "Microsoft Sentinel", "Elastic Security"],
    "firewall": ["Palo Alto Networks NGFW", "Fortinet FortiGate", "Cisco Secure Firewall"],
    "cloud": ["AWS CloudTrail", "Azure Activity Log", "Google Cloud Audit Logs"],
    "identity": ["Okta", "Microsoft Entra ID", "Cisco Duo"],
    "email": ["Microsoft Defender for Office 365", "Proofpoint", "Mimecast"],
}
# Share of a tenant's alerts a connector of each kind raises (relative).
CONNECTOR_ALERT_WEIGHT = {"edr": 5, "siem": 4, "firewall": 2, "cloud": 1.5, "identity": 2, "email": 3}
DOWN_LATENCY_MS = 30_000    # a down connector's health check times out

# MITRE ATT&CK Enterprise techniques (id, name, tactic, a typical incident title), most common
# first: the base popularity of a technique falls with its position in this list.
TECHNIQUES = [
    ("T1566", "Phishing", "initial-access", "Phishing email reported by user"),
    ("T1078", "Valid Accounts", "initial-access", "Sign-in with valid credentials from unusual location"),
    ("T1110", "Brute Force", "credential-access", "Brute force against VPN gateway"),
    ("T1059", "Command and Scripting Interpreter", "execution", "Suspicious PowerShell command line"),
    ("T1204", "User Execution", "execution", "User opened malicious attachment"),
    ("T1190", "Exploit Public-Facing Application", "initial-access", "Exploitation attempt on public web application"),
    ("T1071", "Application Layer Protocol", "command-and-control", "Beaconing over HTTPS to rare domain"),
    ("T1021", "Remote Services", "lateral-movement", "Lateral movement over RDP"),
    ("T1003", "OS Credential Dumping", "credential-access", "LSASS memory access by unknown process"),
    ("T1133", "External Remote Services", "initial-access", "External remote access from new country"),
    ("T1486", "Data Encrypted for Impact", "impact", "Ransomware file encryption detected"),
    ("T1055", "Process Injection", "defense-evasion", "Process injection into browser process"),
    ("T1547", "Boot or Logon Autostart Execution", "persistence", "New Run key autostart entry"),
    ("T1053", "Scheduled Task/Job", "execution", "Suspicious scheduled task created"),
    ("T1105", "Ingress Tool Transfer", "command-and-control", "Tool download from external host"),
    ("T1027", "Obfuscated Files or Information", "defense-evasion", "Obfuscated script executed"),
    ("T1098", "Account Manipulation", "persistence", "Mailbox permissions changed"),
    ("T1136", "Create Account", "persistence", "New local administrator account created"),
    ("T1048", "Exfiltration Over Alternative Protocol", "exfiltration", "Large DNS tunneling volume"),
    ("T1567", "Exfiltration Over Web Service", "exfiltration", "Upload to personal cloud storage"),
    ("T1041", "Exfiltration Over C2 Channel", "exfiltration", "Data exfiltration over command channel"),
    ("T1082", "System Information Discovery", "discovery", "System information discovery burst"),
    ("T1083", "File and Directory Discovery", "discovery", "Mass file enumeration on file share"),
    ("T1018", "Remote System Discovery", "discovery", "Remote system discovery scan"),
    ("T1046", "Network Service Discovery", "discovery", "Internal port scan detected"),
    ("T1087", "Account Discovery", "discovery", "Domain account enumeration"),
    ("T1069", "Permission Groups Discovery", "discovery", "Privileged group enumeration"),
    ("T1562", "Impair Defenses", "defense-evasion", "Endpoint protection disabled"),
    ("T1070", "Indicator Removal", "defense-evasion", "Security event log cleared"),
    ("T1036", "Masquerading", "defense-evasion", "Masqueraded system binary"),
    ("T1218", "System Binary Proxy Execution", "defense-evasion", "Rundll32 proxy execution"),
    ("T1112", "Modify Registry", "defense-evasion", "Suspicious registry modification"),
    ("T1543", "Create or Modify System Process", "persistence", "New service installed"),
    ("T1068", "Exploitation for Privilege Escalation", "privilege-escalation", "Privilege escalation exploit attempt"),
    ("T1548", "Abuse Elevation Control Mechanism", "privilege-escalation", "UAC bypass attempt"),
    ("T1558", "Steal or Forge Kerberos Tickets", "credential-access", "Kerberoasting activity"),
    ("T1552", "Unsecured Credentials", "credential-access", "Credentials found in script file"),
    ("T1114", "Email Collection", "collection", "Mail forwarding rule to external address"),
    ("T1560", "Archive Collected Data", "collection", "Data archived before transfer"),
    ("T1489", "Service Stop", "impact", "Critical service stopped"),
]
TECHNIQUE_SKEW = 1.1        # popularity of the technique at position r is 1 / (r + 1) ** skew
GENERIC_TITLES = ["Suspected {name}", "{name} activity detected"]
RULE_TEMPLATES = ["{name} - behavioral", "{name} - IOC match", "{name} - correlation", "{name} - threshold"]
# Titles a user could type: CSV/XLSX exports must carry them byte-exact and render them harmless.
TRICKY_TITLES = [
    '=HYPERLINK("http://x","click")',
    "+SUM(1,2) in macro from finance, urgent",
    '-1 day token replay for user "bob"',
    "@admin mention: password reset request",
    'Phishing: "Your invoice", reply-to spoofed',
    "Zugriff verweigert — ü",
    "Ticket imported from mail\nsecond line of the subject",
    "\tTab-led title, CR\r\nand a \"quote\"",
    "Script at C:\\Users\\Public\\run.ps1 wrote \\N and \\.",
    "不正アクセスの疑い — 東京オフィス",
]

CONTROLS = [
    ("SOC2", "CC6.1", "Logical access security software, infrastructure and architectures"),
    ("SOC2", "CC6.2", "User registration and authorization"),
    ("SOC2", "CC6.3", "Role-based access is granted, modified and removed"),
    ("SOC2", "CC6.6", "Protection against threats from outside system boundaries"),
    ("SOC2", "CC6.7", "Restriction and protection of data in transmission"),
    ("SOC2", "CC6.8", "Prevention and detection of unauthorized or malicious software"),
    ("SOC2", "CC7.1", "Detection of configuration changes and new vulnerabilities"),
    ("SOC2", "CC7.2", "Monitoring of system components for anomalies"),
    ("SOC2", "CC7.3", "Evaluation of security events"),
    ("SOC2", "CC7.4", "Response to identified security incidents"),
    ("SOC2", "CC7.5", "Recovery from identified security incidents"),
    ("SOC2", "CC8.1", "Change management"),
    ("ISO27001", "A.5.7", "Threat intelligence"),
    ("ISO27001", "A.5.15", "Access control"),
    ("ISO27001", "A.5.24", "Information security incident management planning and preparation"),
    ("ISO27001", "A.5.25", "Assessment and decision on information security events"),
    ("ISO27001", "A.5.26", "Response to information security incidents"),
    ("ISO27001", "A.5.28", "Collection of evidence"),
    ("ISO27001", "A.8.7", "Protection against malware"),
    ("ISO27001", "A.8.8", "Management of technical vulnerabilities"),
    ("ISO27001", "A.8.12", "Data leakage prevention"),
    ("ISO27001", "A.8.15", "Logging"),
    ("ISO27001", "A.8.16", "Monitoring activities"),
    ("NIST-CSF", "GV.RM-01", "Risk management objectives are established and agreed"),
    ("NIST-CSF", "ID.RA-01", "Vulnerabilities in assets are identified, validated and recorded"),
    ("NIST-CSF", "PR.AA-01", "Identities and credentials are managed"),
    ("NIST-CSF", "PR.DS-01", "Data-at-rest is protected"),
    ("NIST-CSF", "PR.DS-02", "Data-in-transit is protected"),
    ("NIST-CSF", "PR.PS-04", "Log records are generated for continuous monitoring"),
    ("NIST-CSF", "DE.CM-01", "Networks and network services are monitored"),
    ("NIST-CSF", "DE.CM-09", "Computing hardware, software and their data are monitored"),
    ("NIST-CSF", "DE.AE-02", "Potentially adverse events are analyzed"),
    ("NIST-CSF", "DE.AE-06", "Information on adverse events is provided to authorized staff"),
    ("NIST-CSF", "RS.MA-01", "The incident response plan is executed"),
    ("NIST-CSF", "RS.AN-03", "Analysis establishes what took place and the root cause"),
    ("NIST-CSF", "RC.RP-01", "The recovery portion of the incident response plan is executed"),
]
EVIDENCE_VALID_DAYS = 90    # evidence older than this counts as expired

FIRST_NAMES = ["Ada", "Ben", "Chen", "Dana", "Emre", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kofi", "Lena",
               "Mia", "Noah", "Olu", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Victor", "Wen", "Yara",
               "Zoë", "Jürgen", "Søren", "Amélie"]
LAST_NAMES = ["Adams", "Brown", "Costa", "Dubois", "Eze", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
              "Kim", "Lopez", "Meyer", "Novak", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Weber",
              "Müller", "Núñez", "O'Brien", "Łukasiewicz"]

TABLES = ["tenants", "analysts", "attack_techniques", "incidents", "alerts", "detections", "connectors",
          "connector_health_events", "compliance_controls", "compliance_evidence"]

_POOL_BITS = 16             # weighted choices are lookups in tables of 2**_POOL_BITS entries
_LOGNORMAL_BITS = 14        # lognormal delays are quantiles on a grid of 2**_LOGNORMAL_BITS
_BLOCK = 8192               # incidents generated per block


# ----------------------------------------------------------------------------------------------
# Public helpers

def tenant_ids(n: int) -> list[str]:
    """The tenant ids `seed()` uses for `n` tenants, in order."""
    return [NAMED_TENANTS[i][0] if i < len(NAMED_TENANTS) else f"tenant-{i + 1:03d}" for i in range(n)]


def default_end_date(today: dt.date | None = None) -> dt.date:
    """Today (UTC): the data ends at midnight, so the last complete day, week and month all have data."""
    today = today or dt.datetime.now(dt.UTC).date()
    return dt.date(today.year, today.month, today.day)


# ----------------------------------------------------------------------------------------------
# Formatting: CSV fields and timestamps without datetime objects in the hot loops

@cache
def _hms() -> list[str]:
    """'HH:MM:SS+00' for every second of a day."""
    return [f"{h:02d}:{m:02d}:{s:02d}+00" for h in range(24) for m in range(60) for s in range(60)]


@cache
def _day(day_number: int) -> str:
    """'YYYY-MM-DD ' of a day counted from 1970-01-01."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day_number)).isoformat() + " "


def _ts(epoch: int) -> str:
    """Epoch seconds -> PostgreSQL timestamptz text in UTC."""
    return _day(epoch // 86400) + _hms()[epoch % 86400]


def _epoch(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * 86400


def _quote(text: str) -> str:
    """A CSV field that COPY reads back byte-exact (always quoted: never NULL, never a marker)."""
    return '"' + text.replace('"', '""') + '"'


def _pool(items: list, weights: Iterable[float], bits: int = _POOL_BITS) -> list:
    """A lookup table where each item fills a share of 2**bits slots proportional to its weight.

    `pool[rng.getrandbits(bits)]` is then a weighted choice at the cost of one C call. Shares
    are apportioned by largest remainder; no randomness is involved.
    """
    weights = list(weights)
    size = 1 << bits
    total = sum(weights)
    exact = [w * size / total for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(items)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: size - sum(counts)]:
        counts[i] += 1
    table: list = []
    for item, count in zip(items, counts):
        table.extend([item] * count)
    return table


@cache
def _lognormal_factors(sigma: float, bits: int = _LOGNORMAL_BITS) -> list[float]:
    """exp(sigma * z) at 2**bits evenly spaced quantiles of the standard normal: a lognormal
    draw with median 1 is `table[rng.getrandbits(bits)]`."""
    normal = statistics.NormalDist()
    size = 1 << bits
    return [math.exp(sigma * normal.inv_cdf((k + 0.5) / size)) for k in range(size)]


# ----------------------------------------------------------------------------------------------
# Streaming COPY

class _ChunkReader:
    """The file-like object handed to `copy_expert`: each read() returns the next chunk.

    psycopg2 accepts any length from read() and stops at b"" (chunks are never empty). A
    generator that fails is remembered, so `_copy` raises its error rather than psycopg2's
    "COPY from stdin failed".
    """

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self.failure: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            return next(self._chunks, b"")
        except BaseException as exc:
            self.failure = exc
            raise


def _encode_chunks(lines: Iterable[str], limit: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Join lines into UTF-8 chunks of about `limit` bytes."""
    batch: list[str] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= limit:
            yield "".join(batch).encode()
            batch, size = [], 0
    if batch:
        yield "".join(batch).encode()


def _csv_chunks(rows: Iterable[tuple], limit: int = CHUNK_BYTES) -> Iterator[bytes]:
    """CSV of arbitrary rows (None -> NULL, booleans -> t/f) for the small tables."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow(["t" if v is True else "f" if v is False else v for v in row])
        if buffer.tell() >= limit:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def _copy(cur, table: str, columns: list[str], chunks: Iterator[bytes]) -> int:
    reader = _ChunkReader(chunks)
    try:
        cur.copy_expert(f"copy raw.{table} ({', '.join(columns)}) from stdin with (format csv)", reader)
    except Exception as exc:
        # psycopg2 reports a failing read() as a cancelled COPY; raise what actually failed.
        if reader.failure is not None and reader.failure is not exc:
            raise reader.failure from exc
        raise
    return cur.rowcount


# ----------------------------------------------------------------------------------------------
# The world every table shares: tenants, their analysts, connectors and habits

class _Tenant:
    __slots__ = ("index", "id", "name", "plan", "timezone", "created", "weight", "ack_factor",
                 "resolve_factor", "analysts", "analyst_pool", "connectors", "connector_pool",
                 "technique_pool", "noise_technique_pool")


class _World:
    def __init__(self, n_tenants: int, seed: int, end: dt.date):
        rng = random.Random(f"nexus-seed:{seed}:world")
        self.seed = seed
        self.end = end
        self.end_epoch = _epoch(end)
        self.start_epoch = self.end_epoch - WINDOW_DAYS * 86400
        technique_index = list(range(len(TECHNIQUES)))
        base_popularity = [1.0 / (r + 1) ** TECHNIQUE_SKEW for r in technique_index]
        self.tenants: list[_Tenant] = []
        for i, tenant_id in enumerate(tenant_ids(n_tenants)):
            t = _Tenant()
            t.index, t.id = i, tenant_id
            if i < len(NAMED_TENANTS):
                _, t.name, t.plan, t.timezone = NAMED_TENANTS[i]
            else:
                t.name = f"Tenant {i + 1:03d} Inc."
                t.plan = rng.choice(PLANS)
                t.timezone = rng.choice(TIMEZONES)
            t.created = self.start_epoch - rng.randint(200, 1500) * 86400 + rng.randint(8 * 3600, 18 * 3600)
            # Volume falls with the position, with some noise: tenants clearly differ.
            t.weight = rng.uniform(0.8, 1.25) / (i + 1) ** 0.6
            t.ack_factor = rng.uniform(0.6, 1.35)  # tenants differ in speed
            t.resolve_factor = rng.uniform(0.65, 1.3)
            prefer = [p * rng.lognormvariate(0.0, 0.6) for p in base_popularity]
            t.technique_pool = _pool(technique_index, prefer, bits=12)
            t.noise_technique_pool = _pool(technique_index, [p ** 0.5 for p in prefer], bits=12)

            analysts = rng.randint(8, 40)
            names = rng.sample(range(len(FIRST_NAMES) * len(LAST_NAMES)), analysts)
            t.analysts = []
            for j, name_index in enumerate(names):
                first = FIRST_NAMES[name_index // len(LAST_NAMES)]
                last = LAST_NAMES[name_index % len(LAST_NAMES)]
                team = TEAMS[j % 4] if j < 4 else rng.choices(TEAMS, TEAM_WEIGHTS)[0]
                hired = max(self.start_epoch - rng.randint(14, 2500) * 86400,
                            t.created + rng.randint(0, 90) * 86400)
                t.analysts.append((f"{tenant_id}-a{j + 1:03d}", first, last, team, hired))
            # Tier 1/2 handle most incidents; some analysts are busier than others.
            workload = [{"tier1": 3.0, "tier2": 2.0, "threat_hunting": 0.5, "ir": 1.0}[a[3]]
                        * rng.uniform(0.5, 1.5) for a in t.analysts]
            t.analyst_pool = _pool([a[0] for a in t.analysts], workload, bits=10)

            kinds = ["edr", "siem"] + [rng.choice(CONNECTOR_KINDS) for _ in range(rng.randint(5, 12) - 2)]
            t.connectors = []
            used_names: dict[str, int] = {}
            for j, kind in enumerate(kinds):
                product = rng.choice(CONNECTOR_PRODUCTS[kind])
                used_names[product] = used_names.get(product, 0) + 1
                name = product if used_names[product] == 1 else f"{product} ({used_names[product]})"
                created = t.created + rng.randint(1, 150) * 86400 + rng.randint(0, 86399)
                t.connectors.append((f"{tenant_id}-c{j + 1:02d}", kind, name, created))
            t.connector_pool = _pool([c[0] for c in t.connectors],
                                     [CONNECTOR_ALERT_WEIGHT[c[1]] * rng.uniform(0.5, 1.5) for c in t.connectors],
                                     bits=10)
            self.tenants.append(t)
        self.tenant_pool = _pool(list(range(n_tenants)), [t.weight for t in self.tenants])
        self.severity_pool = _pool(list(range(4)), SEVERITY_WEIGHTS)
        self.noise_severity_pool = _pool(list(range(4)), [1, 5, 25, 69])
        self._hourly_intensity(rng)

    def _hourly_intensity(self, rng: random.Random) -> None:
        """Cumulative share of incidents per hour of the window (weekdays, working hours, a slow
        rise, a few campaign bursts), for turning uniform draws into opening times."""
        hours = WINDOW_DAYS * 24
        first_day = self.start_epoch // 86400
        bursts = [(rng.randrange(hours), rng.randint(6, 36), rng.uniform(1.8, 3.5)) for _ in range(5)]
        intensity = []
        for h in range(hours):
            weekday = (first_day + h // 24 + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
            hour = h % 24
            value = (1.0 if weekday < 5 else 0.55)
            value *= 0.5 + math.exp(-(((hour - 13.5) / 5.0) ** 2))
            value *= 0.85 + 0.3 * h / hours
            for start, length, factor in bursts:
                if start <= h < start + length:
                    value *= factor
            intensity.append(value)
        total = sum(intensity)
        cumulative = [0.0]
        for value in intensity:
            cumulative.append(cumulative[-1] + value / total)
        cumulative[-1] = 1.0
        self.hour_cdf = cumulative
        self.hour_scale = [3600.0 * total / value for value in intensity]  # seconds per unit of share


# ----------------------------------------------------------------------------------------------
# Incidents and alerts

def _incident_core(world: _World, n: int) -> Iterator[tuple[int, list, list, list, list]]:
    """The facts incidents and alerts share, in blocks: (first id, tenant indexes, severity
    indexes, technique indexes, opening epochs). Ids follow opening time.

    Both the incidents and the alerts load call this: it only uses its own random stream, so
    the second pass regenerates exactly the same incidents without keeping them in memory.
    """
    rng = random.Random(f"nexus-seed:{world.seed}:incident-core")
    rand, bits = rng.random, rng.getrandbits
    tenant_pool, severity_pool = world.tenant_pool, world.severity_pool
    technique_pools = [t.technique_pool for t in world.tenants]
    cdf, scale = world.hour_cdf, world.hour_scale
    start, last = world.start_epoch, world.end_epoch - 1
    find = bisect.bisect_right
    # Ascending uniform order statistics, streamed: x runs through the sorted sample from the
    # top (x_n = U^(1/n), x_{k} = x_{k+1} * U^(1/k)), so 1 - x ascends. No sorting, no memory.
    x = 1.0
    remaining = n
    first_id = 1
    while remaining:
        m = min(_BLOCK, remaining)
        tenants = [tenant_pool[bits(_POOL_BITS)] for _ in range(m)]
        severities = [severity_pool[bits(_POOL_BITS)] for _ in range(m)]
        techniques = [technique_pools[t][bits(12)] for t in tenants]
        opened = []
        append = opened.append
        for k in range(remaining, remaining - m, -1):
            x *= rand() ** (1.0 / k)
            u = 1.0 - x
            h = find(cdf, u) - 1
            o = start + h * 3600 + int((u - cdf[h]) * scale[h])
            append(o if o <= last else last)
        yield first_id, tenants, severities, techniques, opened
        first_id += m
        remaining -= m


INCIDENT_COLUMNS = ["incident_id", "opened_at", "acknowledged_at", "resolved_at", "_loaded_at", "status",
                    "assignee_id", "title", "tenant_id", "attack_technique_id", "severity",
                    "sla_ack_minutes", "sla_resolve_minutes"]


def _incident_lines(world: _World, n: int) -> Iterator[str]:
    rng = random.Random(f"nexus-seed:{world.seed}:incidents")
    rand, bits = rng.random, rng.getrandbits
    end = world.end_epoch
    day = {d: _day(d) for d in range(world.start_epoch // 86400, end // 86400)}
    hms = _hms()
    n_tech = len(TECHNIQUES)
    # "tenant,technique,severity,sla_ack,sla_resolve\n" for every combination.
    tails = [f"{t.id},{TECHNIQUES[k][0]},{s},{SLA_ACK_MINUTES[s]},{SLA_RESOLVE_MINUTES[s]}\n"
             for t in world.tenants for k in range(n_tech) for s in SEVERITIES]
    titles = [[_quote(title), _quote(title)] + [_quote(g.format(name=name)) for g in GENERIC_TITLES]
              for _, name, _, title in TECHNIQUES]
    tricky = [_quote(t) for t in TRICKY_TITLES]
    tricky_scale = len(tricky) / TRICKY_TITLE_SHARE
    ack_median = [SLA_ACK_MINUTES[s] * 60 * ACK_MEDIAN_OF_SLA * t.ack_factor
                  for t in world.tenants for s in SEVERITIES]
    resolve_median = [SLA_RESOLVE_MINUTES[s] * 60 * RESOLVE_MEDIAN_OF_SLA * t.resolve_factor
                      for t in world.tenants for s in SEVERITIES]
    ack_factor, resolve_factor = _lognormal_factors(ACK_SIGMA), _lognormal_factors(RESOLVE_SIGMA)
    analyst_pools = [t.analyst_pool for t in world.tenants]
    closed_before = end - CLOSED_AFTER_SECONDS
    for iid, tenants, severities, techniques, opened in _incident_core(world, n):
        for t, s, k, o in zip(tenants, severities, techniques, opened):
            ts = t * 4 + s
            a = o + 20 + int(ack_median[ts] * ack_factor[bits(_LOGNORMAL_BITS)])
            r = o + int(resolve_median[ts] * resolve_factor[bits(_LOGNORMAL_BITS)])
            if r < a + 60:
                r = a + 60
            u = rand()
            o_s = day[o // 86400] + hms[o % 86400]
            if a >= end:
                a_s = r_s = assignee = ""
                status, last = "new", o
            else:
                a_s = day[a // 86400] + hms[a % 86400]
                assignee = analyst_pools[t][bits(10)]
                if r >= end or u < STUCK_SHARE:
                    r_s = ""
                    status, last = ("acknowledged" if rand() < 0.35 else "in_progress"), a
                else:
                    r_s = day[r // 86400] + hms[r % 86400]
                    status, last = ("closed" if r < closed_before and u < 0.9 else "resolved"), r
            loaded = last + 60 + int(rand() * 1740)
            if loaded >= end:
                loaded = end - 1
            v = rand()
            title = tricky[int(v * tricky_scale)] if v < TRICKY_TITLE_SHARE else titles[k][bits(2)]
            yield (f"{iid},{o_s},{a_s},{r_s},{day[loaded // 86400]}{hms[loaded % 86400]},{status},"
                   f"{assignee},{title},{tails[(t * n_tech + k) * 4 + s]}")
            iid += 1


ALERT_COLUMNS = ["alert_id", "incident_id", "created_at", "_loaded_at", "connector_id", "rule_name",
                 "tenant_id", "attack_technique_id", "severity"]


def _alert_lines(world: _World, n: int) -> Iterator[str]:
    """1-3 alerts shortly before each incident opened (mean 1.2) and, around the same time,
    alerts nobody escalated (0.3 per incident): about 1.5 alerts per incident, 20% unlinked."""
    rng = random.Random(f"nexus-seed:{world.seed}:alerts")
    rand, bits = rng.random, rng.getrandbits
    start, end = world.start_epoch, world.end_epoch
    day = {d: _day(d) for d in range(start // 86400, end // 86400)}
    hms = _hms()
    n_tech = len(TECHNIQUES)
    tails = [f"{t.id},{TECHNIQUES[k][0]},{s}\n" for t in world.tenants for k in range(n_tech) for s in SEVERITIES]
    rules = [[_quote(r.format(name=name)) for r in RULE_TEMPLATES] for _, name, _, _ in TECHNIQUES]
    connector_pools = [t.connector_pool for t in world.tenants]
    noise_techniques = [t.noise_technique_pool for t in world.tenants]
    noise_severity = world.noise_severity_pool
    alert_id = 0
    for iid, tenants, severities, techniques, opened in _incident_core(world, n):
        for t, s, k, o in zip(tenants, severities, techniques, opened):
            connectors = connector_pools[t]
            tail = tails[(t * n_tech + k) * 4 + s]
            rule = rules[k]
            u = rand()
            c = o - 5 - int(rand() * 600)  # the last alert before the incident opened
            if u < 0.85:
                times = (c,)
            else:
                b = c - 1 - int(rand() * 900)
                times = (b, c) if u < 0.95 else (b - 1 - int(rand() * 900), b, c)
            for c in times:
                if c < start:
                    c = start
                loaded = o + 60 + int(rand() * 1740)
                if loaded >= end:
                    loaded = end - 1
                alert_id += 1
                yield (f"{alert_id},{iid},{day[c // 86400]}{hms[c % 86400]},{day[loaded // 86400]}"
                       f"{hms[loaded % 86400]},{connectors[bits(10)]},{rule[bits(2)]},{tail}")
            if rand() < 0.3:
                c = o - int(rand() * 3600)
                if c < start:
                    c = start
                loaded = c + 60 + int(rand() * 1740)
                if loaded >= end:
                    loaded = end - 1
                nk = noise_techniques[t][bits(12)]
                alert_id += 1
                yield (f"{alert_id},,{day[c // 86400]}{hms[c % 86400]},{day[loaded // 86400]}"
                       f"{hms[loaded % 86400]},{connectors[bits(10)]},{rules[nk][bits(2)]},"
                       f"{tails[(t * n_tech + nk) * 4 + noise_severity[bits(_POOL_BITS)]]}")
            iid += 1


# ----------------------------------------------------------------------------------------------
# The smaller tables

def _tenant_rows(world: _World) -> Iterator[tuple]:
    rng = random.Random(f"nexus-seed:{world.seed}:tenants")
    for t in world.tenants:
        yield (t.id, t.name, t.plan, t.timezone, _ts(t.created), _ts(t.created + rng.randint(60, 1800)))


def _analyst_rows(world: _World) -> Iterator[tuple]:
    rng = random.Random(f"nexus-seed:{world.seed}:analysts")
    for t in world.tenants:
        domain = f"{t.id}.example.com"
        for analyst_id, first, last, team, hired in t.analysts:
            local = _ascii(f"{first}.{last}".lower())
            yield (analyst_id, t.id, f"{first} {last}", f"{local}@{domain}", team,
                   _day(hired // 86400).strip(), _ts(hired + 9 * 3600 + rng.randint(60, 1800)))


def _ascii(text: str) -> str:
    """'zoë.müller' -> 'zoe.muller', for email addresses."""
    text = unicodedata.normalize("NFKD", text.translate(_NOT_DECOMPOSABLE))
    return "".join(c for c in text if c.isascii() and (c.isalnum() or c in ".-"))


_NOT_DECOMPOSABLE = str.maketrans({"ø": "o", "ł": "l", "ß": "ss", "æ": "ae"})


def _detection_rows(world: _World) -> Iterator[tuple]:
    """Per tenant, rules for a subset of the techniques (popular ones more likely covered);
    most predate the window, some are added during it, about 10% are disabled."""
    rng = random.Random(f"nexus-seed:{world.seed}:detections")
    end = world.end_epoch
    for t in world.tenants:
        coverage = rng.uniform(0.4, 0.85)
        j = 0
        for k, (tech_id, name, _, _) in enumerate(TECHNIQUES):
            if rng.random() > coverage * (1.3 if k < 10 else 0.9):
                continue
            for variant in rng.sample(RULE_TEMPLATES, rng.choice([1, 1, 1, 2])):
                j += 1
                created = max(t.created, end - rng.randint(2, 700) * 86400) + rng.randint(0, 86399)
                created = min(created, end - 86400)
                enabled = rng.random() >= 0.1
                changed = created if enabled else created + rng.randint(0, (end - 60 - created) // 60) * 60
                yield (f"{t.id}-d{j:03d}", t.id, tech_id, variant.format(name=name), enabled,
                       _ts(created), _ts(min(changed + rng.randint(60, 1800), end - 1)))


def _connector_rows(world: _World) -> Iterator[tuple]:
    rng = random.Random(f"nexus-seed:{world.seed}:connectors")
    for t in world.tenants:
        for connector_id, kind, name, created in t.connectors:
            yield (connector_id, t.id, name, kind, _ts(created), _ts(created + rng.randint(60, 1800)))


HEALTH_COLUMNS = ["event_id", "observed_at", "_loaded_at", "status", "latency_ms", "events_ingested",
                  "tenant_id", "connector_id"]


def _health_lines(world: _World) -> Iterator[str]:
    """One observation per connector per hour over the last HEALTH_DAYS days, ids in time
    order. Each connector is a Markov chain: mostly healthy, degraded spells, outage streaks."""
    rng = random.Random(f"nexus-seed:{world.seed}:health")
    rand = rng.random
    hours = HEALTH_DAYS * 24
    first = world.end_epoch - hours * 3600
    end = world.end_epoch
    connectors = []  # [tail, base latency, hourly volume, flakiness, state]
    for t in world.tenants:
        for connector_id, kind, _, _ in t.connectors:
            base = {"edr": 2_000, "siem": 40_000, "firewall": 120_000, "cloud": 15_000,
                    "identity": 5_000, "email": 3_000}[kind]
            connectors.append([f"{t.id},{connector_id}\n", rng.randint(40, 600),
                               base * rng.uniform(0.3, 3.0), rng.uniform(0.3, 2.0), "healthy"])
    diurnal = [0.45 + math.exp(-(((h - 13.5) / 5.0) ** 2)) for h in range(24)]
    day = {d: _day(d) for d in range(first // 86400, end // 86400)}
    hms = _hms()
    event_id = 0
    for h in range(hours):
        observed = first + h * 3600
        observed_s = _ts(observed)
        day_factor = diurnal[h % 24]
        for c in connectors:
            tail, latency, volume, flaky, state = c
            x = rand()
            if state == "healthy":
                state = "down" if x < 0.0015 * flaky else "degraded" if x < 0.012 * flaky else "healthy"
            elif state == "degraded":
                state = "down" if x < 0.04 else "healthy" if x < 0.40 else "degraded"
            else:
                state = "healthy" if x < 0.22 else "down"
            c[4] = state
            if state == "healthy":
                ms = int(latency * (0.7 + 0.6 * rand()))
                events = int(volume * day_factor * (0.85 + 0.3 * rand()))
            elif state == "degraded":
                ms = int(latency * (3 + 7 * rand()))
                events = int(volume * day_factor * (0.1 + 0.5 * rand()))
            else:
                ms, events = DOWN_LATENCY_MS, 0
            loaded = observed + 30 + int(rand() * 270)
            if loaded >= end:
                loaded = end - 1
            event_id += 1
            yield f"{event_id},{observed_s},{day[loaded // 86400]}{hms[loaded % 86400]},{state},{ms},{events},{tail}"


def _control_rows(world: _World) -> Iterator[tuple]:
    rng = random.Random(f"nexus-seed:{world.seed}:controls")
    for t in world.tenants:
        owners = [a for a in t.analysts if a[3] in ("tier2", "ir", "threat_hunting")] or t.analysts
        chosen = sorted(rng.sample(range(len(CONTROLS)), rng.randint(15, min(30, len(CONTROLS)))))
        for index in chosen:
            framework, control, title = CONTROLS[index]
            loaded = world.start_epoch - rng.randint(1, 60) * 86400 + rng.randint(0, 86399)
            yield (t.id, f"{framework}-{control}", framework, title, rng.choice(owners)[0], _ts(loaded))


def _evidence_rows(world: _World) -> Iterator[tuple]:
    """Evidence per control on a 3-7 week cadence through the window. Older than
    EVIDENCE_VALID_DAYS is expired; a few are rejected; some controls stop getting evidence."""
    rng = random.Random(f"nexus-seed:{world.seed}:evidence")
    start, end = world.start_epoch, world.end_epoch
    tenants = {t.id: t for t in world.tenants}
    evidence_id = 0
    for tenant_id, control_id, *_ in _control_rows(world):
        reviewers = [a[0] for a in tenants[tenant_id].analysts]
        cadence = rng.randint(21, 49) * 86400
        stop = end if rng.random() >= 0.12 else end - rng.randint(60, 150) * 86400
        collected = start + rng.randint(0, cadence)
        while collected < stop - 3600:
            evidence_id += 1
            if rng.random() < 0.07:
                status = "rejected"
            elif collected < end - EVIDENCE_VALID_DAYS * 86400:
                status = "expired"
            else:
                status = "valid"
            reviewed = min(collected + rng.randint(600, 3 * 86400), end - 1)
            yield (evidence_id, tenant_id, control_id, _ts(collected), status, rng.choice(reviewers),
                   _ts(reviewed))
            collected += cadence + rng.randint(-3, 3) * 86400 + rng.randint(-7200, 7200)


# ----------------------------------------------------------------------------------------------

def _loads(world: _World, incidents: int) -> list[tuple[str, list[str], Callable[[], Iterator[bytes]]]]:
    return [
        ("tenants", ["tenant_id", "name", "plan", "timezone", "created_at", "_loaded_at"],
         lambda: _csv_chunks(_tenant_rows(world))),
        ("analysts", ["analyst_id", "tenant_id", "name", "email", "team", "hired_at", "_loaded_at"],
         lambda: _csv_chunks(_analyst_rows(world))),
        ("attack_techniques", ["technique_id", "name", "tactic"],
         lambda: _csv_chunks(t[:3] for t in TECHNIQUES)),
        ("incidents", INCIDENT_COLUMNS, lambda: _encode_chunks(_incident_lines(world, incidents))),
        ("alerts", ALERT_COLUMNS, lambda: _encode_chunks(_alert_lines(world, incidents))),
        ("detections", ["detection_id", "tenant_id", "technique_id", "name", "enabled", "created_at", "_loaded_at"],
         lambda: _csv_chunks(_detection_rows(world))),
        ("connectors", ["connector_id", "tenant_id", "name", "kind", "created_at", "_loaded_at"],
         lambda: _csv_chunks(_connector_rows(world))),
        ("connector_health_events", HEALTH_COLUMNS, lambda: _encode_chunks(_health_lines(world))),
        ("compliance_controls", ["tenant_id", "control_id", "framework", "title", "owner_id", "_loaded_at"],
         lambda: _csv_chunks(_control_rows(world))),
        ("compliance_evidence", ["evidence_id", "tenant_id", "control_id", "collected_at", "status",
                                 "reviewer_id", "_loaded_at"],
         lambda: _csv_chunks(_evidence_rows(world))),
    ]


def seed(conn, *, tenants: int = 3, incidents: int = 20_000, seed: int = 42,
         end_date: dt.date | None = None) -> dict[str, int]:
    """Replace the raw tables with deterministic sample data; returns rows per table.

    Creates the raw tables if missing (raw_schema.sql), truncates them and loads everything
    with COPY in one transaction, then commits: a reader sees the old data or the new, and a
    second call with the same arguments leaves exactly the same rows. Data ends just before
    midnight UTC of `end_date` (default: the first day of the current month).
    """
    if not isinstance(tenants, int) or tenants < 1:
        raise ValueError(f"tenants must be a positive integer, got {tenants!r}")
    if not isinstance(incidents, int) or incidents < 0:
        raise ValueError(f"incidents must be a non-negative integer, got {incidents!r}")
    end = end_date or default_end_date()
    end = dt.date(end.year, end.month, end.day)  # a datetime counts as its date
    world = _World(tenants, seed, end)
    counts: dict[str, int] = {}
    with conn:
        with conn.cursor() as cur:
            cur.execute("create schema if not exists raw")
            cur.execute(RAW_SCHEMA_SQL.read_text(encoding="utf-8"))
            cur.execute("truncate " + ", ".join(f"raw.{t}" for t in TABLES))
            cur.execute("set local client_encoding = 'UTF8'")  # the chunks are UTF-8 bytes
            for table, columns, chunks in _loads(world, incidents):
                counts[table] = _copy(cur, table, columns, chunks())
            for table in TABLES:
                cur.execute(f"analyze raw.{table}")
    return counts
