"""The vocabulary of the sample data: named tenants, severities and SLAs, teams, connectors,
ATT&CK techniques, titles, compliance controls, names, and the shares that shape the story."""

from __future__ import annotations

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



def tenant_ids(n: int) -> list[str]:
    """The tenant ids `seed()` uses for `n` tenants, in order."""
    return [NAMED_TENANTS[i][0] if i < len(NAMED_TENANTS) else f"tenant-{i + 1:03d}" for i in range(n)]
