"""Download links over real HTTP: the Starlette app served by uvicorn on a loopback port.

Every request is checked as things are at that moment (link, principal, membership, run), and
every grant and denial leaves an access event and an audit row. Time moves through the app's
injectable clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import secrets

import pytest

from orchestration.access import audit, policy
from orchestration.api import link_routes as web
from orchestration.api.serving import serving
from orchestration.catalog import templates
from orchestration.links import service as links
from orchestration.runs import engine
from orchestration.runs.request import ReportRequest
from orchestration.services import artifacts as artifact_service
from tests.helpers import principals
from tests.helpers.audit import audit_rows
from tests.helpers.cli import run as cli

from ..conftest import PERIOD

PLATFORM_ADMIN = "platform@nexus.example"


class Clock:
    """The app's clock: real time plus an offset a test can move."""

    def __init__(self):
        self.offset = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


def _run(key: str, tenant: str, formats: tuple[str, ...], requester: str):
    template = templates.load(key, 1)
    request = ReportRequest.for_period(template, tenant, PERIOD, requester=requester, formats=formats)
    return engine.run_report(template, request)


@pytest.fixture(scope="module")
def runs(built, tenant_ids):
    acme, globex = tenant_ids[0], tenant_ids[1]
    assert (acme, globex) == ("acme", "globex")
    return {
        "incident": _run("incident_summary", acme, ("csv", "pdf"), "analyst@acme.example"),
        "compliance": _run("compliance_evidence_summary", acme, ("csv",), "manager@acme.example"),
        "globex": _run("incident_summary", globex, ("csv",), "analyst@globex.example"),
    }


@pytest.fixture(scope="module")
def clock():
    return Clock()


@pytest.fixture(autouse=True)
def _reset_clock(clock):
    clock.offset = dt.timedelta(0)
    yield
    clock.offset = dt.timedelta(0)


@pytest.fixture(scope="module")
def server(clock):
    """The real app under uvicorn in a background thread; yields its base URL."""
    with serving(web.create_app(clock=clock), name="link service") as base:
        yield base


def get(base: str, path: str, method: str = "GET"):
    host, port = base.removeprefix("http://").split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        c.request(method, path)
        resp = c.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        c.close()


def fetch(base: str, link: links.CreatedLink):
    return get(base, f"/links/{link.token}")


def manifest_entry(published, fmt: str) -> dict:
    return next(f for f in published.manifest["files"] if f["format"] == fmt)


def events(conn, link_id):
    return links.access_events(conn, link_id=link_id)


def share(conn, published, fmt="csv", principal="analyst@acme.example", actor="manager@acme.example", **kw):
    with conn:  # the test owns the transaction, as a service would
        return links.create(conn, published.run_id, fmt=fmt, principal_id=principal, actor=actor, **kw)


# ---------------------------------------------------------------- grant


def test_grant_streams_the_published_file(conn, runs, server):
    incident = runs["incident"]
    link = share(conn, incident, fmt="pdf")
    status, headers, body = fetch(server, link)
    entry = manifest_entry(incident, "pdf")
    assert status == 200
    assert body == (incident.location / entry["name"]).read_bytes()
    assert hashlib.sha256(body).hexdigest() == entry["sha256"] and len(body) == entry["bytes"]
    assert headers["content-type"] == "application/pdf"
    assert headers["content-length"] == str(entry["bytes"])
    assert headers["content-disposition"].startswith(f'attachment; filename="{entry["name"]}"')
    assert headers["cache-control"] == "no-store"

    status, headers, body = fetch(server, share(conn, incident, fmt="csv"))
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert hashlib.sha256(body).hexdigest() == manifest_entry(incident, "csv")["sha256"]

    (event,) = events(conn, link.link_id)
    assert (event.outcome, event.principal_id, event.tenant_id, event.run_id, event.remote_addr) == (
        "granted", "analyst@acme.example", "acme", incident.run_id, "127.0.0.1")
    created, downloaded = audit_rows(conn, f"link {link.link_id}")
    assert created[:3] == ("manager@acme.example", "link.create", "succeeded")
    assert downloaded[:4] == ("analyst@acme.example", "link.download", "allowed", "acme")
    assert downloaded[4]["file"] == entry["name"]


def test_token_is_stored_only_as_its_hash(conn, runs):
    link = share(conn, runs["incident"])
    with conn, conn.cursor() as cur:
        cur.execute("select token_sha256 from control.links where link_id = %s", (link.link_id,))
        (stored,) = cur.fetchone()
        cur.execute("select count(*) from control.links where token_sha256 = %s or token_sha256 = %s",
                    (link.token, link.token[:20]))
        assert cur.fetchone()[0] == 0
    assert stored == hashlib.sha256(link.token.encode()).hexdigest()
    assert len(link.token) >= 43  # 32 random bytes


def test_unknown_token_is_404_and_recorded(conn, runs, server):
    token = secrets.token_urlsafe(32)
    status, headers, body = get(server, f"/links/{token}")
    assert status == 404 and body == b"This link is not valid." and headers["cache-control"] == "no-store"
    with conn, conn.cursor() as cur:
        cur.execute("select link_id, outcome, reason from control.access_events order by event_id desc limit 1")
        assert cur.fetchone() == (None, "denied", "unknown token")
        cur.execute("select actor, action, outcome, details->>'reason' from control.audit_log order by seq desc limit 1")
        assert cur.fetchone() == ("(anonymous)", "link.download.denied", "denied", "unknown token")


def test_head_is_not_a_download(conn, runs, server):
    link = share(conn, runs["incident"])
    status, headers, _ = get(server, f"/links/{link.token}", method="HEAD")
    # Not a download, but a request that presents the token: recorded (issue 10), then refused.
    assert status == 405
    assert [(e.outcome, e.reason) for e in events(conn, link.link_id)] == [("denied", "method HEAD not allowed")]


# ---------------------------------------------------------------- expiry


def test_expired_link_is_410_when_the_clock_moves(conn, runs, server, clock):
    link = share(conn, runs["incident"], expires_in=dt.timedelta(hours=2))
    clock.offset = dt.timedelta(hours=1, minutes=59)
    assert fetch(server, link)[0] == 200
    clock.offset = dt.timedelta(hours=2, seconds=1)
    status, _, body = fetch(server, link)
    assert status == 410 and body == b"This link has expired."
    assert [e.outcome for e in events(conn, link.link_id)] == ["granted", "denied"]
    assert events(conn, link.link_id)[-1].reason.startswith("link expired at")
    assert audit_rows(conn, f"link {link.link_id}")[-1][1:3] == ("link.download.denied", "denied")


def test_expiry_is_capped_by_sensitivity(conn, runs):
    compliance = runs["compliance"]  # restricted: 1 hour
    assert templates.load("compliance_evidence_summary").sensitivity == "restricted"
    kw = dict(principal="executive@acme.example", actor="tenant_admin@acme.example")
    with pytest.raises(links.LinkError, match="at most 1h"):
        share(conn, compliance, expires_in=dt.timedelta(hours=1, minutes=1), **kw)
    now = dt.datetime(2026, 7, 2, 9, 0, tzinfo=dt.UTC)
    assert share(conn, compliance, now=now, **kw).expires_at == now + dt.timedelta(hours=1)
    half_hour = dt.timedelta(minutes=30)
    assert share(conn, compliance, now=now, expires_in=half_hour, **kw).expires_at == now + half_hour
    incident = runs["incident"]  # internal: 7 days
    assert share(conn, incident, now=now).expires_at == now + dt.timedelta(days=7)
    with pytest.raises(links.LinkError, match="at most 7d"):
        share(conn, incident, expires_in=dt.timedelta(days=8))
    assert links.expiry_cap(templates.load("analyst_throughput")) == dt.timedelta(hours=24)  # confidential
    assert links.parse_duration("2h") == dt.timedelta(hours=2)
    with pytest.raises(links.LinkError):
        links.parse_duration("forever")


def test_expired_run_is_410(conn, built, server):
    published = _run("incident_summary", "acme", ("json",), "analyst@acme.example")
    link = share(conn, published, fmt="json")
    assert fetch(server, link)[0] == 200
    assert artifact_service.expire(conn, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=3650),
                            run_ids=[published.run_id]) == [published.run_id]
    status, _, body = fetch(server, link)
    assert status == 410 and body == b"This link has expired."
    assert events(conn, link.link_id)[-1].reason == f"run {published.run_id} is expired"


# ---------------------------------------------------------------- revocation


@pytest.mark.parametrize("scope", ["link", "run", "template", "template_of_tenant", "tenant"])
def test_revoked_link_is_403(conn, runs, server, scope):
    compliance, globex = runs["compliance"], runs["globex"]
    link = share(conn, compliance, principal="executive@acme.example", actor="tenant_admin@acme.example")
    bystander = share(conn, globex, principal="analyst@globex.example", actor="manager@globex.example")
    assert fetch(server, link)[0] == 200
    how = {
        "link": dict(link_id=link.link_id, actor="tenant_admin@acme.example"),
        "run": dict(run_id=compliance.run_id, actor="manager@acme.example"),
        "template": dict(template_key="compliance_evidence_summary", actor=PLATFORM_ADMIN),
        "template_of_tenant": dict(template_key="compliance_evidence_summary", tenant_id="acme",
                                   actor="tenant_admin@acme.example"),
        "tenant": dict(tenant_id="acme", actor="tenant_admin@acme.example"),
    }[scope]
    with conn:
        revoked = links.revoke(conn, reason=f"test {scope}", **how)
    assert link.link_id in revoked and bystander.link_id not in revoked
    status, _, body = fetch(server, link)
    assert status == 403 and body == b"This link does not grant access."
    assert events(conn, link.link_id)[-1].reason.startswith(f"revoked by {how['actor']}")
    assert fetch(server, bystander)[0] == 200  # another tenant's link is untouched
    with conn, conn.cursor() as cur:
        cur.execute("select actor, outcome, details from control.audit_log where action = 'link.revoke' "
                    "order by seq desc limit 1")
        actor, outcome, details = cur.fetchone()
    assert (actor, outcome, details["reason"]) == (how["actor"], "succeeded", f"test {scope}")
    assert link.link_id in details["link_ids"]
    with conn:
        assert links.revoke(conn, reason="again", **how) == []  # already revoked


def test_revocation_needs_the_right_role(conn, runs):
    link = share(conn, runs["incident"])
    for actor, kw in [
        ("manager@acme.example", dict(tenant_id="acme")),               # the switch needs tenant_admin
        ("tenant_admin@globex.example", dict(tenant_id="acme")),        # of that tenant
        ("tenant_admin@acme.example", dict(template_key="incident_summary")),  # every tenant's links
        ("viewer@acme.example", dict(run_id=runs["incident"].run_id)),
        ("analyst@acme.example", dict(link_id=link.link_id)),           # neither creator nor admin
    ]:
        with pytest.raises(policy.AccessDenied):
            links.revoke(conn, actor=actor, reason="nope", **kw)
    with conn, conn.cursor() as cur:
        cur.execute("select actor from control.audit_log where action = 'link.revoke.denied' order by seq desc limit 5")
        assert {r[0] for r in cur.fetchall()} == {"manager@acme.example", "tenant_admin@globex.example",
                                                  "tenant_admin@acme.example", "viewer@acme.example", "analyst@acme.example"}
    assert links.list_links(conn, run_id=runs["incident"].run_id)[0].status == "active"
    with conn:
        assert links.revoke(conn, actor="manager@acme.example", reason="mine", link_id=link.link_id) == [link.link_id]


# ---------------------------------------------------------------- principal checked at request time


def test_principal_is_checked_at_every_request(conn, runs, server):
    who = "links-exec@acme.example"
    principals.upsert_principal(conn, who, roles=["executive"], tenants=["acme"], actor="test")
    link = share(conn, runs["compliance"], principal=who, actor="tenant_admin@acme.example")
    assert fetch(server, link)[0] == 200

    principals.upsert_principal(conn, who, roles=["viewer"], tenants=["acme"], actor="test")  # lost the role
    assert fetch(server, link)[0] == 403
    principals.upsert_principal(conn, who, roles=["executive"], tenants=["globex"], actor="test")  # lost the membership
    assert fetch(server, link)[0] == 403
    principals.upsert_principal(conn, who, roles=["executive"], tenants=["acme"], actor="test")
    assert fetch(server, link)[0] == 200
    principals.deactivate(conn, who, actor="test")
    status, _, body = fetch(server, link)
    assert status == 403 and body == b"This link does not grant access."

    reasons = [(e.outcome, e.reason) for e in events(conn, link.link_id)]
    assert [o for o, _ in reasons] == ["granted", "denied", "denied", "granted", "denied"]
    assert "none of the roles this template allows" in reasons[1][1]
    assert "not a member of tenant acme" in reasons[2][1]
    assert "deactivated" in reasons[4][1]
    rows = audit_rows(conn, f"link {link.link_id}")
    assert [r[2] for r in rows] == ["succeeded", "allowed", "denied", "denied", "allowed", "denied"]


def test_another_tenant_cannot_be_given_or_give_a_link(conn, runs):
    incident = runs["incident"]
    with pytest.raises(policy.AccessDenied, match="analyst@globex.example may not receive"):
        share(conn, incident, principal="analyst@globex.example")
    with pytest.raises(policy.AccessDenied, match="not a member of tenant acme"):
        share(conn, incident, actor="manager@globex.example")
    with pytest.raises(policy.AccessDenied):  # viewers do not receive the incident summary
        share(conn, incident, principal="viewer@acme.example")
    with pytest.raises(policy.AccessDenied):  # a manager may not pass on a restricted report
        share(conn, runs["compliance"], principal="executive@acme.example", actor="manager@acme.example")
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from control.links where principal_id = 'analyst@globex.example' and run_id = %s",
                    (incident.run_id,))
        assert cur.fetchone()[0] == 0
        cur.execute("select action, details->>'principal' from control.audit_log where outcome = 'denied' "
                    "and correlation_id = %s order by seq desc limit 3", (incident.run_id,))
        assert cur.fetchall()[-1] == ("link.create.denied", "analyst@globex.example")


def test_a_link_whose_principal_moved_tenant_is_403(conn, runs, server):
    """A principal of another tenant is refused at request time even with a link made earlier."""
    who = "links-mover@acme.example"
    principals.upsert_principal(conn, who, roles=["analyst"], tenants=["acme"], actor="test")
    link = share(conn, runs["incident"], principal=who)
    principals.upsert_principal(conn, who, roles=["analyst"], tenants=["globex"], actor="test")
    assert fetch(server, link)[0] == 403


# ---------------------------------------------------------------- command line


def test_links_from_the_command_line(conn, runs, server):
    incident, compliance = runs["incident"], runs["compliance"]
    made = cli("links", "create", incident.run_id, "--format", "csv", "--for", "analyst@acme.example",
               "--expires-in", "2h", "--as", "manager@acme.example", env={"REPORTS_LINK_BASE_URL": server})
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip().splitlines()[-1]
    assert url.startswith(f"{server}/links/")
    status, _, body = get(server, url.removeprefix(server))
    assert status == 200 and hashlib.sha256(body).hexdigest() == manifest_entry(incident, "csv")["sha256"]
    link_id = made.stdout.split()[1]

    listed = cli("links", "list", "--run", incident.run_id)
    line = next(x for x in listed.stdout.splitlines() if x.split()[0] == link_id)
    assert "analyst@acme.example" in line and line.split()[-1] == "active" and url.split("/")[-1] not in listed.stdout

    too_long = cli("links", "create", compliance.run_id, "--format", "csv", "--for", "executive@acme.example",
                   "--expires-in", "2h", "--as", "tenant_admin@acme.example")
    assert too_long.returncode == 1 and "at most 1h" in too_long.stderr and "Traceback" not in too_long.stderr

    refused = cli("links", "revoke", "--tenant", "acme", "--as", "manager@acme.example", "--reason", "incident")
    assert refused.returncode == 1 and "may not revoke" in refused.stderr and "Traceback" not in refused.stderr

    revoked = cli("links", "revoke", "--link", link_id, "--as", "manager@acme.example", "--reason", "sent to the wrong list")
    assert revoked.returncode == 0 and f"revoked 1 link(s): {link_id}" in revoked.stdout
    assert get(server, url.removeprefix(server))[0] == 403
    line = next(x for x in cli("links", "list", "--tenant", "acme").stdout.splitlines() if x.split()[0] == link_id)
    assert "revoked by manager@acme.example: sent to the wrong list" in line

    switch = cli("links", "revoke", "--tenant", "acme", "--as", "tenant_admin@acme.example", "--reason", "incident")
    assert switch.returncode == 0, switch.stderr
    assert all(r.status != "active" for r in links.list_links(conn, tenant_id="acme"))
    assert audit.verify(conn).ok
