"""Every request that presents a link token is an access event, and the token never leaks:
not into the access log, not through a Referer. Over real HTTP (uvicorn on a loopback port,
with its access log on), against the real link service and Postgres.
"""

from __future__ import annotations

import http.client
import logging
import secrets

import pytest

from orchestration.api import link_routes as web
from orchestration.api.serving import serving
from orchestration.catalog import templates
from orchestration.links import service as links
from orchestration.runs import engine
from orchestration.runs.request import ReportRequest
from tests.conftest import PERIOD
from tests.helpers.audit import audit_log

OTHER_METHODS = ("HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


class Lines(logging.Handler):
    """Keeps every formatted line of the logger it is attached to."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def access_log():
    return Lines()


@pytest.fixture(scope="module")
def server(access_log):
    """The app under uvicorn with its access log on, as `nexus-reports serve` runs it."""
    logger = logging.getLogger(web.ACCESS_LOGGER)

    def attach() -> None:  # after uvicorn (re)configured its loggers
        access_log.setFormatter(logger.handlers[0].formatter if logger.handlers else logging.Formatter())
        logger.addHandler(access_log)

    with serving(web.create_app(), name="link service", access_log=True, log_level="info", configured=attach) as base:
        yield base.removeprefix("http://")
    logger.removeHandler(access_log)


@pytest.fixture(scope="module")
def link(built):
    t = templates.load("incident_summary")
    run = engine.run_report(t, ReportRequest.for_period(t, "acme", PERIOD, requester="analyst@acme.example"))
    from orchestration.db import warehouse

    with warehouse.connection() as conn, conn:
        return links.create(conn, run.run_id, fmt="csv", principal_id="analyst@acme.example", actor="manager@acme.example")


def request(server: str, method: str, path: str, headers: dict[str, str] | None = None):
    c = http.client.HTTPConnection(server, timeout=30)
    try:
        c.request(method, path, body=b"x" if method in ("POST", "PUT", "PATCH") else None, headers=headers or {})
        resp = c.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        c.close()


def events(conn, link_id):
    return [(e.outcome, e.reason) for e in links.access_events(conn, link_id=link_id)]


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_every_method_on_a_token_is_recorded_then_refused(conn, server, link, method):
    before = events(conn, link.link_id)
    status, headers, _ = request(server, method, f"/links/{link.token}")
    assert status == 405 and headers["allow"] == "GET"
    assert events(conn, link.link_id) == [*before, ("denied", f"method {method} not allowed")]
    (last,) = audit_log(conn, "actor", "action", "outcome", "details", target=f"link {link.link_id}")[-1:]
    assert last[:3] == ("analyst@acme.example", "link.download.denied", "denied")
    assert last[3]["method"] == method and last[3]["remote_addr"] == "127.0.0.1"


def test_a_method_on_an_unknown_token_is_recorded_too(conn, server):
    status, _, _ = request(server, "DELETE", f"/links/{secrets.token_urlsafe(32)}")
    assert status == 405
    with conn, conn.cursor() as cur:
        cur.execute("select link_id, outcome, reason from control.access_events order by event_id desc limit 1")
        assert cur.fetchone() == (None, "denied", "method DELETE not allowed")


@pytest.mark.parametrize("method", ("GET", "POST"))
@pytest.mark.parametrize("path", ("/links/{token}", "/links/not-a-token", "/links/{token}/extra", "/nowhere"))
def test_every_answer_forbids_referers_and_caching(server, link, method, path):
    status, headers, _ = request(server, method, path.format(token=link.token))
    assert status in (200, 404, 405)
    assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"


def test_a_token_in_a_referer_opens_nothing(conn, server, link):
    """A page reached from a download link (or a forged request) carries the link in its Referer;
    only the token in the path is ever read."""
    referer = {"Referer": f"http://{server}/links/{link.token}"}
    before = events(conn, link.link_id)
    status, _, body = request(server, "GET", f"/links/{secrets.token_urlsafe(32)}", headers=referer)
    assert status == 404 and body == b"This link is not valid."
    assert request(server, "GET", "/healthz", headers=referer)[0] == 200
    assert events(conn, link.link_id) == before  # the link in the Referer was neither used nor recorded
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from control.audit_log where details::text like %s", (f"%{link.token}%",))
        assert cur.fetchone() == (0,)


def test_tokens_never_reach_the_access_log(server, link, access_log):
    request(server, "GET", f"/links/{link.token}")
    request(server, "HEAD", f"/links/{link.token}?download=1")
    request(server, "POST", f"/links/{link.token}/extra")
    lines = [line for line in access_log.lines if "/links/" in line]
    assert len(lines) >= 3, access_log.lines
    assert all(link.token not in line and "/links/<redacted>" in line for line in lines)
    assert any('"GET /links/<redacted> HTTP/1.1" 200' in line for line in lines)
