"""Outbound URLs (orchestration/delivery/outbound.py): no webhook or bucket endpoint may point the
platform at loopback, private, link-local (cloud metadata) or otherwise internal addresses,
whatever the URL's spelling, at registration, at enqueue and at send time.

Where a test needs a host name to resolve to a chosen address, DNS is patched: the one lookup,
`outbound.resolve`, is replaced by a scripted resolver (a hostile DNS server, in effect). Real
HTTP receivers listen on loopback, reached with the development switch on.
"""

from __future__ import annotations

import http.server
import threading
import uuid

import pytest

from orchestration.catalog import templates
from orchestration.delivery import outbound, webhook
from orchestration.delivery.errors import SendFailure
from orchestration.runs import engine
from orchestration.runs.request import ReportRequest
from orchestration.services import delivery as delivery_service
from tests.conftest import PERIOD
from tests.helpers.audit import audit_log

ADMIN = "tenant_admin@acme.example"
PUBLIC = "93.184.215.14"  # a globally routable address; nothing connects to it in these tests
METADATA = "169.254.169.254"

REFUSED_LITERALS = {
    "http://127.0.0.1:1/internal-admin": "plain http",
    "https://127.0.0.1:1/internal-admin": "loopback",
    "https://169.254.169.254/latest/meta-data/": "link-local",
    "https://10.0.0.5/": "private",
    "https://172.16.3.4/": "private",
    "https://192.168.1.1/": "private",
    "https://100.64.0.1/": "CGNAT",
    "https://0.0.0.0/": "unspecified",
    "https://224.0.0.1/": "multicast",
    "https://240.0.0.1/": "reserved",
    "https://[::1]/": "loopback",
    "https://[::ffff:127.0.0.1]/": "loopback",
    "https://[::ffff:169.254.169.254]/": "link-local",
    "https://[::]/": "unspecified",
    "https://[fe80::1]/": "link-local",
    "https://[fd00:ec2::254]/": "private",
    "https://[ff02::1]/": "multicast",
    "https://[2002:7f00:1::]/": "loopback",  # 6to4 around 127.0.0.1
    "https://[64:ff9b::a9fe:a9fe]/": "link-local",  # NAT64 around 169.254.169.254
    "https://2130706433/": "numeric IPv4 form",  # 127.0.0.1 as one decimal number
    "https://0x7f.1/": "numeric IPv4 form",
    "https://0177.0.0.1/": "numeric IPv4 form",
    "https://127.1/": "numeric IPv4 form",
    "https://0xa9fea9fe/": "numeric IPv4 form",  # 169.254.169.254 in hex
    "https://localhost/": "loopback",  # the real resolver (/etc/hosts)
    "ftp://files.example/": "must be https",
    "https://user:pw@hooks.example/": "credentials",
}


@pytest.fixture(autouse=True)
def strict(monkeypatch):
    monkeypatch.delenv(outbound.INSECURE_ENV, raising=False)
    monkeypatch.setenv("REPORTS_WEBHOOK_TIMEOUT", "2")


class Dns:
    """A scripted resolver: answers[i] for the i-th lookup (the last one repeats), and a log."""

    def __init__(self, *answers: list[str]):
        self.answers = list(answers)
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


@pytest.mark.parametrize("url", REFUSED_LITERALS)
def test_internal_and_ambiguous_addresses_are_refused(url):
    with pytest.raises(outbound.OutboundRefused, match=REFUSED_LITERALS[url]):
        outbound.check_now(url)


def test_the_development_switch_allows_http_and_loopback_only(monkeypatch):
    monkeypatch.setenv(outbound.INSECURE_ENV, "1")
    assert outbound.check_now("http://127.0.0.1:8080/hook").address == "127.0.0.1"
    for url in ("http://169.254.169.254/", "http://10.0.0.1/", "http://[fe80::1]/", "http://2130706433/"):
        with pytest.raises(outbound.OutboundRefused):
            outbound.check_now(url)


def test_a_name_is_checked_by_every_address_it_resolves_to(monkeypatch):
    monkeypatch.setattr(outbound, "resolve", Dns([PUBLIC]))
    target = outbound.check_now("https://hooks.example/x?y=1")
    assert (target.host, target.address, target.port, target.path) == ("hooks.example", PUBLIC, 443, "/x?y=1")
    # A hostile DNS answering one public and one internal address is refused, whatever the order.
    monkeypatch.setattr(outbound, "resolve", Dns([PUBLIC, "10.1.2.3"]))
    with pytest.raises(outbound.OutboundRefused, match=r"resolves to 10\.1\.2\.3\) is a private"):
        outbound.check_now("https://hooks.example/")


def test_registration_refuses_internal_urls_and_records_it(conn, built, monkeypatch):
    for url in ("http://127.0.0.1:1/internal-admin", "https://169.254.169.254/", "https://[::ffff:127.0.0.1]/"):
        with pytest.raises(outbound.OutboundRefused):
            delivery_service.register_webhook(conn, "acme", url, actor=ADMIN)
        assert webhook.endpoint_secret(conn, "acme", url) is None
        assert audit_log(conn, "outcome", action="delivery.webhook_register.denied", target=url) == [("denied",)]
    monkeypatch.setattr(outbound, "resolve", Dns([METADATA]))
    with pytest.raises(outbound.OutboundRefused, match="link-local"):
        delivery_service.register_webhook(conn, "acme", "https://metadata.attacker.example/", actor=ADMIN)


# ---------------------------------------------------------------- at send time


@pytest.fixture(scope="module")
def run(built):
    t = templates.load("incident_summary")
    return engine.run_report(t, ReportRequest.for_period(t, "acme", PERIOD, requester="analyst@acme.example"))


def no_link(run_id, fmt, principal_id, variant):
    return f"https://links.test/{run_id}/{fmt}"


def test_a_name_that_turns_into_the_metadata_address_after_registration_is_refused_at_send(conn, run, monkeypatch):
    """DNS rebinding: public at registration and at enqueue, 169.254.169.254 when the send looks it up."""
    url = f"https://rebind-{uuid.uuid4().hex[:8]}.attacker.example/hook"
    dns = Dns([PUBLIC], [PUBLIC], [METADATA])
    monkeypatch.setattr(outbound, "resolve", dns)
    delivery_service.register_webhook(conn, "acme", url, actor=ADMIN)
    result = delivery_service.deliver_run(conn, run.run_id, [f"webhook:{url}"], make_link=no_link)
    assert len(dns.lookups) == 3  # registration, enqueue, send
    (attempt,) = result.attempts
    assert attempt["status"] == "failed_permanent"
    assert METADATA in attempt["error"] and "link-local" in attempt["error"]
    ((outcome, details),) = audit_log(conn, "outcome", "details", action="delivery.refused", target=f"webhook:{url}")
    assert outcome == "denied" and METADATA in details["error"]


def test_enqueue_refuses_a_webhook_whose_name_now_points_inside(conn, run, monkeypatch):
    url = f"https://moved-{uuid.uuid4().hex[:8]}.attacker.example/hook"
    monkeypatch.setattr(outbound, "resolve", Dns([PUBLIC], ["192.168.0.10"]))
    delivery_service.register_webhook(conn, "acme", url, actor=ADMIN)
    result = delivery_service.deliver_run(conn, run.run_id, [f"webhook:{url}"], make_link=no_link)
    assert result.enqueued == [] and "192.168.0.10" in result.refused[0][1]


def test_a_bucket_endpoint_is_checked_too(conn, run):
    result = delivery_service.deliver_run(conn, run.run_id, ["bucket:s3://drop/x;endpoint=http://169.254.169.254"],
                                make_link=no_link)
    assert result.enqueued == [] and "plain http" in result.refused[0][1]


# ---------------------------------------------------------------- the connection itself


class Recorder(http.server.ThreadingHTTPServer):
    """A loopback receiver that records each request; answers `status` with an optional Location."""

    daemon_threads = True

    def __init__(self, status: int = 200, location: str | None = None):
        super().__init__(("127.0.0.1", 0), RecorderHandler)
        self.status, self.location, self.requests = status, location, []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]


class RecorderHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self):
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        self.server.requests.append((self.command, self.path, self.headers.get("host")))
        self.send_response(self.server.status)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer


@pytest.fixture()
def receivers(monkeypatch):
    monkeypatch.setenv(outbound.INSECURE_ENV, "1")
    servers = []

    def make(**kw) -> Recorder:
        servers.append(Recorder(**kw))
        return servers[-1]

    yield make
    for s in servers:
        s.shutdown()
        s.server_close()


def test_the_connection_goes_to_the_checked_address(receivers, monkeypatch):
    """One lookup per send; the socket connects to its answer and the Host header keeps the name.
    The name exists only in the patched resolver, so any second lookup would fail."""
    target = receivers()
    dns = Dns(["127.0.0.1"], [METADATA])
    monkeypatch.setattr(outbound, "resolve", dns)
    url = f"http://pinned.hooks.example:{target.port}/hook"
    assert webhook.post(url, {"x": 1}, secret=webhook.new_secret(), msg_id="msg_pin") == 200
    assert dns.lookups == ["pinned.hooks.example"]
    assert target.requests == [("POST", "/hook", f"pinned.hooks.example:{target.port}")]


def test_a_redirect_to_loopback_is_not_followed(receivers):
    internal = receivers()
    hop = receivers(status=302, location=f"http://127.0.0.1:{internal.port}/internal-admin")
    with pytest.raises(SendFailure, match="redirect .* not followed") as failure:
        webhook.post(f"http://127.0.0.1:{hop.port}/hook", {"x": 1}, secret=webhook.new_secret(), msg_id="msg_redirect")
    assert not failure.value.transient and failure.value.http_status == 302
    assert len(hop.requests) == 1 and internal.requests == []
