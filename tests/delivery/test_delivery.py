"""Delivery: e-mail (real SMTP server, aiosmtpd), signed webhooks (real HTTP receiver on loopback),
bucket drop (moto in server mode), the outbox's retries and dedupe, Gate C and the allow-list."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid

import pytest

from orchestration.access import audit
from orchestration.access.policy import AccessDenied
from orchestration.api.serving import free_port
from orchestration.catalog import templates
from orchestration.delivery import outbox, webhook
from orchestration.delivery import records as delivery_records
from orchestration.runs import engine
from orchestration.runs.request import ReportRequest
from orchestration.runs.run_record import RunOrigin
from orchestration.schedules import store as schedule_store
from orchestration.services import delivery as delivery_service
from tests.helpers.audit import audit_outcomes as audit_rows
from tests.helpers.dagster import sensor_context

from ..servers import SmtpHandler

PERIOD = "2026-06"
APPROVER = "approver@nexus.example"
OWNER = "manager@acme.example"
T0 = dt.datetime(2026, 7, 2, 8, 0, tzinfo=dt.UTC)


def fake_link(run_id, fmt, principal_id, variant):
    """Stands in for the secure-link service (built elsewhere): a URL naming what it links to."""
    return f"https://links.test/{run_id}/{fmt}?principal={principal_id}&variant={variant}"


def unique(local: str, domain: str = "acme.example") -> str:
    return f"{local}+{uuid.uuid4().hex[:8]}@{domain}"


# ---------------------------------------------------------------- real servers


@pytest.fixture(autouse=True)
def env(smtp, monkeypatch):
    monkeypatch.setenv("REPORTS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("REPORTS_SMTP_PORT", str(smtp[1]))
    monkeypatch.setenv("REPORTS_SMTP_TLS", "none")
    monkeypatch.setenv("REPORTS_SMTP_FROM", "reports@nexus.example")
    monkeypatch.setenv("REPORTS_SMTP_TIMEOUT", "5")
    monkeypatch.setenv("REPORTS_WEBHOOK_TIMEOUT", "1")
    # The receivers (webhook, moto) are plain http on loopback: the outbound checker's development switch.
    monkeypatch.setenv("REPORTS_ALLOW_INSECURE_OUTBOUND", "1")


# ---------------------------------------------------------------- published runs


@pytest.fixture(scope="module")
def internal_run(built):
    t = templates.load("incident_summary")
    return engine.run_report(t, ReportRequest.for_period(t, "acme", PERIOD, requester="analyst@acme.example"))


@pytest.fixture(scope="module")
def schedule_id(built):
    from orchestration.db import warehouse

    with warehouse.connection() as conn:
        sid = schedule_store.create(conn, "compliance_evidence_summary", tenant_id="acme", cron="0 6 1 * *",
                                       timezone="UTC", actor=OWNER, reason="monthly evidence for the board",
                                       recipients=["ciso-scheduled@acme.example"])
        # Gate C keys on the schedule, not its state: archive it so no other test's sensor ticks it.
        with conn, conn.cursor() as cur:
            cur.execute("update control.schedules set state = 'archived' where schedule_id = %s", (sid,))
    return sid


@pytest.fixture(scope="module")
def restricted_run(built, schedule_id):
    t = templates.load("compliance_evidence_summary")
    request = ReportRequest.for_period(t, "acme", PERIOD, requester=OWNER, trigger="schedule")
    return engine.run_report(t, request, RunOrigin(schedule_id=str(schedule_id)))


@pytest.fixture(scope="module", autouse=True)
def acme_domain(built):
    from orchestration.db import warehouse

    with warehouse.connection() as conn:
        delivery_service.allow_domain(conn, "acme", "acme.example", actor="tenant_admin@acme.example")


def rows(conn, run_id, addresses):
    return {r.address: r for r in outbox.list_deliveries(conn, run_id) if r.address in addresses}


# ---------------------------------------------------------------- e-mail


def test_internal_report_is_emailed_with_its_files_attached(conn, smtp, internal_run):
    handler, _ = smtp
    to = unique("soc-lead")
    result = delivery_service.deliver_run(conn, internal_run.run_id, [f"email:{to}"], make_link=fake_link, now=T0)
    assert result.refused == [] and [a["status"] for a in result.attempts] == ["sent"]
    (msg,) = handler.to(to)
    attached = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    manifest_files = {f["name"]: f for f in internal_run.manifest["files"]}
    assert set(attached) == set(manifest_files)
    for name, content in attached.items():
        data = content if isinstance(content, bytes) else content.encode()
        assert hashlib.sha256(data).hexdigest() == manifest_files[name]["sha256"]
    row = rows(conn, internal_run.run_id, {to})[to]
    assert row.status == "sent" and row.attempts == 1 and row.provider_message_id == msg["Message-ID"]
    assert msg["Message-ID"] == f"<{row.idempotency_key}@nexus.example>"
    assert [o for o, _ in audit_rows(conn, "delivery.send", f"email:{to}")] == ["succeeded"]
    # The same recipient again: nothing new is enqueued or sent.
    again = delivery_service.deliver_run(conn, internal_run.run_id, [f"email:{to}"], make_link=fake_link, now=T0)
    assert again.enqueued == [] and again.attempts == [] and len(handler.to(to)) == 1


def test_restricted_report_is_emailed_as_links_only_and_needs_gate_c(conn, smtp, restricted_run, schedule_id):
    handler, _ = smtp
    ciso, cfo = unique("ciso"), unique("cfo")
    run_id = restricted_run.run_id

    # No approval: nothing is sent, every recipient refused and audited.
    result = delivery_service.deliver_run(conn, run_id, [f"email:{ciso};principal=executive@acme.example"],
                                          make_link=fake_link, now=T0)
    assert result.enqueued == [] and "has no recorded distribution approval" in result.refused[0][1]
    assert handler.to(ciso) == []
    assert [o for o, _ in audit_rows(conn, "delivery.refused", f"email:{ciso}")] == ["denied"]

    # The schedule's owner may not approve its distribution; an approver can.
    with pytest.raises(AccessDenied, match="owns schedule"):
        delivery_service.approve(conn, schedule_id, approver=OWNER, recipients=[f"email:{ciso}"], channels=["email"])
    delivery_service.approve(conn, schedule_id, approver=APPROVER,
                             recipients=[f"email:{ciso};principal=executive@acme.example"], channels=["email"])
    result = delivery_service.deliver_run(conn, run_id, [f"email:{ciso};principal=executive@acme.example"],
                                          make_link=fake_link, now=T0)
    assert result.refused == [] and [a["status"] for a in result.attempts] == ["sent"]
    (msg,) = handler.to(ciso)
    assert list(msg.iter_attachments()) == []
    body = msg.get_body().get_content()
    for f in restricted_run.manifest["files"]:
        assert fake_link(run_id, f["format"], "executive@acme.example", "internal") in body

    # Adding a recipient voids the approval: the new set is refused as a whole.
    result = delivery_service.deliver_run(conn, run_id, [f"email:{ciso};principal=executive@acme.example", f"email:{cfo}"],
                                make_link=fake_link, now=T0)
    assert result.enqueued == [] and len(result.refused) == 2
    assert all("does not cover this recipient/channel set" in why for _, why in result.refused)
    assert handler.to(cfo) == [] and len(handler.to(ciso)) == 1


def test_recipient_off_the_allow_list_or_without_an_external_variant_is_refused(conn, smtp, internal_run):
    handler, _ = smtp
    ok, outsider, partner = unique("ok"), unique("someone", "evil.example"), unique("auditor")
    result = delivery_service.deliver_run(conn, internal_run.run_id,
                                [f"email:{ok}", f"email:{outsider}", f"email:{partner};external"],
                                make_link=fake_link, now=T0)
    refused = dict(result.refused)
    assert "not on tenant acme's e-mail allow-list" in refused[f"email:{outsider.lower()}"]
    assert "no 'external' variant" in refused[f"email:{partner.lower()};external"]
    assert handler.to(outsider) == [] and handler.to(partner) == [] and len(handler.to(ok)) == 1
    assert [o for o, _ in audit_rows(conn, "delivery.refused", f"email:{outsider.lower()}")] == ["denied"]


def test_smtp_4xx_is_retried_for_that_recipient_only_and_5xx_stops(conn, smtp, internal_run):
    handler, _ = smtp
    a, b, c = unique("a"), unique("b"), unique("c")
    handler.plan[b] = [451]
    handler.plan[c] = [550]
    result = delivery_service.deliver_run(conn, internal_run.run_id, [f"email:{a}", f"email:{b}", f"email:{c}"],
                                make_link=fake_link, now=T0)
    assert [x["status"] for x in result.attempts] == ["sent", "failed_transient", "failed_permanent"]
    state = rows(conn, internal_run.run_id, {a, b, c})
    assert "451" in state[b].last_error and "550" in state[c].last_error
    assert state[b].next_attempt_at == T0 + outbox.backoff(1)

    assert outbox.send_due(conn, T0 + dt.timedelta(seconds=30), make_link=fake_link, run_id=internal_run.run_id) == []
    later = outbox.send_due(conn, T0 + dt.timedelta(minutes=2), make_link=fake_link, run_id=internal_run.run_id)
    assert [(x["address"], x["status"]) for x in later] == [(b, "sent")]
    assert (len(handler.to(a)), len(handler.to(b)), len(handler.to(c))) == (1, 1, 0)
    state = rows(conn, internal_run.run_id, {a, b, c})
    assert (state[b].status, state[b].attempts, state[c].status) == ("sent", 2, "failed_permanent")
    assert [o for o, _ in audit_rows(conn, "delivery.send", f"email:{b}")] == ["failed", "succeeded"]


def test_crash_between_smtp_acceptance_and_acknowledgement_resends_the_same_message_id(conn, smtp, internal_run, monkeypatch):
    handler, _ = smtp
    to = unique("crash")
    real_mark_sent = delivery_records.mark_sent

    def crash(*args, **kwargs):
        raise RuntimeError("worker died after the server accepted the message")

    monkeypatch.setattr(delivery_records, "mark_sent", crash)
    with pytest.raises(RuntimeError, match="worker died"):
        delivery_service.deliver_run(conn, internal_run.run_id, [f"email:{to}"], make_link=fake_link, now=T0)
    monkeypatch.setattr(delivery_records, "mark_sent", real_mark_sent)
    assert len(handler.to(to)) == 1 and rows(conn, internal_run.run_id, {to})[to].status == "sending"

    assert outbox.send_due(conn, T0 + dt.timedelta(minutes=1), make_link=fake_link, run_id=internal_run.run_id) == []
    outbox.send_due(conn, T0 + outbox.SENDING_LEASE, make_link=fake_link, run_id=internal_run.run_id)
    first, second = handler.to(to)
    assert first["Message-ID"] == second["Message-ID"]
    assert rows(conn, internal_run.run_id, {to})[to].status == "sent"


# ---------------------------------------------------------------- webhooks


def test_standard_webhooks_signature_matches_the_spec_example():
    # The example of the Standard Webhooks specification (and its reference libraries' tests).
    assert webhook.sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                        '{"test": 2432232314}') == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_webhook_payload_is_signed_and_verifies(conn, receiver, internal_run):
    from standardwebhooks.webhooks import Webhook

    url = f"{receiver.url}/hooks/{uuid.uuid4().hex[:8]}"
    secret = delivery_service.register_webhook(conn, "acme", url, actor="tenant_admin@acme.example")
    result = delivery_service.deliver_run(conn, internal_run.run_id, [f"webhook:{url}"], make_link=fake_link, now=T0)
    assert [a["status"] for a in result.attempts] == ["sent"]
    (req,) = [r for r in receiver.requests if url.endswith(r["path"])]
    headers = req["headers"]
    payload = Webhook(secret).verify(req["body"], headers)
    # The spec's formula, by hand: v1,base64(HMAC-SHA256(key, "id.timestamp.body")).
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{req['body']}".encode(), hashlib.sha256)
    assert headers["webhook-signature"] == "v1," + base64.b64encode(expected.digest()).decode()
    assert payload["run_id"] == internal_run.run_id and payload["tenant_id"] == "acme"
    assert payload["template"]["key"] == "incident_summary" and payload["period"]["key"] == PERIOD
    assert {f["sha256"] for f in payload["files"]} == {f["sha256"] for f in internal_run.manifest["files"]}
    assert {link["url"] for link in payload["links"]} == {fake_link(internal_run.run_id, f["format"], None, "internal")
                                                          for f in internal_run.manifest["files"]}
    row = rows(conn, internal_run.run_id, {url})[url]
    assert (row.http_status, row.provider_message_id) == (200, headers["webhook-id"])
    # A tampered body does not verify.
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(req["body"].replace("acme", "globex"), headers)


def test_webhook_429_500_and_timeouts_retry_with_backoff_and_410_stops(conn, receiver, internal_run):
    flaky = f"{receiver.url}/flaky/{uuid.uuid4().hex[:8]}"
    gone = f"{receiver.url}/gone/{uuid.uuid4().hex[:8]}"
    for url in (flaky, gone):
        delivery_service.register_webhook(conn, "acme", url, actor="tenant_admin@acme.example")
    receiver.plan[:] = [429, 410]
    result = delivery_service.deliver_run(conn, internal_run.run_id, [f"webhook:{flaky}", f"webhook:{gone}"],
                                make_link=fake_link, now=T0)
    assert [a["status"] for a in result.attempts] == ["failed_transient", "failed_permanent"]
    state = rows(conn, internal_run.run_id, {flaky, gone})
    assert (state[flaky].http_status, state[gone].http_status) == (429, 410)

    now = T0
    for answer, expected_error in ((500, "HTTP 500"), ("hang", "timed out")):
        receiver.plan[:] = [answer]
        now = state[flaky].next_attempt_at
        (attempt,) = outbox.send_due(conn, now, make_link=fake_link, run_id=internal_run.run_id)
        assert attempt["status"] == "failed_transient" and expected_error in attempt["error"]
        state = rows(conn, internal_run.run_id, {flaky, gone})
        assert state[flaky].next_attempt_at == now + outbox.backoff(state[flaky].attempts)
    receiver.plan[:] = []
    (attempt,) = outbox.send_due(conn, state[flaky].next_attempt_at, make_link=fake_link, run_id=internal_run.run_id)
    assert attempt["status"] == "sent"
    state = rows(conn, internal_run.run_id, {flaky, gone})
    assert (state[flaky].status, state[flaky].attempts, state[flaky].http_status) == ("sent", 4, 200)
    assert (state[gone].status, state[gone].attempts) == ("failed_permanent", 1)
    got = [r for r in receiver.requests if flaky.endswith(r["path"])]
    assert [r["status"] for r in got] == [429, 500, "hang", 200]
    assert len({r["headers"]["webhook-id"] for r in got}) == 1  # every retry carries the same webhook-id
    counts = outbox.channel_counts(conn, internal_run.run_id)["webhook"]
    assert counts["failed_permanent"] >= 1 and counts["sent"] >= 1


def test_webhook_crash_after_acknowledgement_resends_the_same_webhook_id(conn, receiver, internal_run, monkeypatch):
    url = f"{receiver.url}/crash/{uuid.uuid4().hex[:8]}"
    delivery_service.register_webhook(conn, "acme", url, actor="tenant_admin@acme.example")

    def crash(*args, **kwargs):
        raise RuntimeError("worker died after HTTP 200")

    with monkeypatch.context() as m:
        m.setattr(delivery_records, "mark_sent", crash)
        with pytest.raises(RuntimeError):
            delivery_service.deliver_run(conn, internal_run.run_id, [f"webhook:{url}"], make_link=fake_link, now=T0)
    outbox.send_due(conn, T0 + outbox.SENDING_LEASE, make_link=fake_link, run_id=internal_run.run_id)
    got = [r for r in receiver.requests if url.endswith(r["path"])]
    assert len(got) == 2 and got[0]["headers"]["webhook-id"] == got[1]["headers"]["webhook-id"]
    assert json.loads(got[0]["body"]) == json.loads(got[1]["body"])


def test_unregistered_webhook_is_refused(conn, receiver, internal_run):
    url = f"{receiver.url}/unknown"
    result = delivery_service.deliver_run(conn, internal_run.run_id, [f"webhook:{url}"], make_link=fake_link, now=T0)
    assert result.enqueued == [] and "not registered" in result.refused[0][1]


# ---------------------------------------------------------------- bucket drop


def test_bucket_drop_copies_the_files_to_the_recipients_prefix(conn, internal_run, monkeypatch):
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        for k, v in aws.items():
            monkeypatch.setenv(k, v)
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="acme-drop")
        result = delivery_service.deliver_run(conn, internal_run.run_id, [f"bucket:s3://acme-drop/soc/monthly;endpoint={endpoint}",
                                                                f"bucket:s3://no-such-bucket/x;endpoint={endpoint}"],
                                    make_link=fake_link, now=T0)
        assert [a["status"] for a in result.attempts] == ["sent", "failed_permanent"]
        for f in internal_run.manifest["files"]:
            body = s3.get_object(Bucket="acme-drop", Key=f"soc/monthly/{internal_run.run_id}/{f['name']}")["Body"].read()
            assert hashlib.sha256(body).hexdigest() == f["sha256"]
        assert "NoSuchBucket" in result.attempts[1]["error"]
    finally:
        server.stop()


# ---------------------------------------------------------------- command line


def test_delivery_commands(conn, schedule_id, internal_run, monkeypatch):
    from click.testing import CliRunner

    from orchestration.cli.main import main
    from orchestration.delivery import outbound

    # hooks.acme.example does not exist: DNS is patched to answer a public address for it.
    monkeypatch.setattr(outbound, "resolve", lambda host, port: ["93.184.215.14"])

    def cli(*args):
        return CliRunner().invoke(main, ["delivery", *args])

    denied = cli("approve", str(schedule_id), "--as", OWNER, "--recipients", "email:board@acme.example", "--channels", "email")
    assert denied.exit_code == 1 and "owns schedule" in denied.output and "Traceback" not in denied.output
    off_list = cli("approve", str(schedule_id), "--as", APPROVER, "--recipients", "email:x@globex.example", "--channels", "email")
    assert off_list.exit_code == 1 and "not on tenant acme's e-mail allow-list" in off_list.output
    mismatch = cli("approve", str(schedule_id), "--as", APPROVER, "--recipients", "email:board@acme.example",
                   "--channels", "email,webhook")
    assert mismatch.exit_code == 1 and "must be exactly those of the recipients" in mismatch.output
    not_admin = cli("allow-domain", "acme", "partner.example", "--as", "analyst@acme.example")
    assert not_admin.exit_code == 1 and "may not manage_principals" in not_admin.output
    hook = cli("add-webhook", "acme", "https://hooks.acme.example/soc", "--as", "tenant_admin@acme.example")
    assert hook.exit_code == 0 and "signing secret (shown once): whsec_" in hook.output
    ok = cli("allow-domain", "acme", "Partner.Example", "--as", "tenant_admin@acme.example")
    assert ok.exit_code == 0 and "@partner.example allowed" in ok.output
    status = cli("status", "--run", internal_run.run_id)
    assert status.exit_code == 0 and "email: " in status.output and "sent" in status.output


# ---------------------------------------------------------------- TLS and authentication


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_email_over_starttls_and_implicit_tls_with_login(conn, internal_run, monkeypatch, tmp_path, mode):
    import ssl

    import trustme
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    logins = []

    def authenticator(server, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"reports", b"s3cret")
        logins.append((mechanism, ok, session.ssl is not None or mode == "tls"))
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

    handler = SmtpHandler()
    # With implicit TLS the whole connection is encrypted before SMTP starts (aiosmtpd cannot tell).
    tls_kwargs = ({"tls_context": server_ctx, "require_starttls": True} if mode == "starttls"
                  else {"ssl_context": server_ctx, "auth_require_tls": False})
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                            auth_required=True, auth_exclude_mechanism=["LOGIN"], **tls_kwargs)
    controller.start()
    try:
        for k, v in {"REPORTS_SMTP_PORT": str(controller.port), "REPORTS_SMTP_TLS": mode,
                     "REPORTS_SMTP_USER": "reports", "REPORTS_SMTP_PASSWORD": "s3cret",
                     "REPORTS_SMTP_CA_FILE": str(ca_file)}.items():
            monkeypatch.setenv(k, v)
        to = unique(f"tls-{mode}")
        result = delivery_service.deliver_run(conn, internal_run.run_id, [f"email:{to}"], make_link=fake_link, now=T0)
        assert [a["status"] for a in result.attempts] == ["sent"]
        assert len(handler.to(to)) == 1 and logins and all(ok and encrypted for _, ok, encrypted in logins)

        # A wrong password is a permanent failure (SMTP 535), recorded and not retried.
        monkeypatch.setenv("REPORTS_SMTP_PASSWORD", "wrong")
        bad = unique(f"tls-{mode}-bad")
        (attempt,) = delivery_service.deliver_run(conn, internal_run.run_id, [f"email:{bad}"],
                                                  make_link=fake_link, now=T0).attempts
        assert attempt["status"] == "failed_permanent" and "535" in attempt["error"], attempt["error"]
    finally:
        controller.stop()


def test_unreachable_smtp_server_is_transient_and_gives_up_after_max_attempts(conn, internal_run, monkeypatch):
    monkeypatch.setenv("REPORTS_SMTP_PORT", str(free_port()))  # nobody listens there
    to = unique("down")
    now = T0
    (attempt,) = delivery_service.deliver_run(conn, internal_run.run_id, [f"email:{to}"], make_link=fake_link, now=now).attempts
    assert attempt["status"] == "failed_transient" and "connection" in attempt["error"].lower()
    for _ in range(outbox.MAX_ATTEMPTS - 1):
        now = rows(conn, internal_run.run_id, {to})[to].next_attempt_at
        (attempt,) = [a for a in outbox.send_due(conn, now, make_link=fake_link, run_id=internal_run.run_id)
                      if a["address"] == to]
        assert attempt["status"] in ("failed_transient", "failed_permanent")
    row = rows(conn, internal_run.run_id, {to})[to]
    assert (row.status, row.attempts) == ("failed_permanent", outbox.MAX_ATTEMPTS)
    assert f"gave up after {outbox.MAX_ATTEMPTS} attempts" in row.last_error
    later = outbox.send_due(conn, now + dt.timedelta(days=1), make_link=fake_link, run_id=internal_run.run_id)
    assert to not in [a["address"] for a in later]


# ---------------------------------------------------------------- Gate C at send time, variants


def test_replacing_the_approval_stops_pending_retries_of_the_old_set(conn, smtp, restricted_run, schedule_id):
    handler, _ = smtp
    board = unique("board")
    handler.plan[board] = [421]
    delivery_service.approve(conn, schedule_id, approver=APPROVER, recipients=[f"email:{board}"], channels=["email"])
    (attempt,) = delivery_service.deliver_run(conn, restricted_run.run_id, [f"email:{board}"],
                                              make_link=fake_link, now=T0).attempts
    assert attempt["status"] == "failed_transient"
    # Meanwhile the distribution list grows and is approved again: the old set is no longer approved.
    delivery_service.approve(conn, schedule_id, approver="approver2@nexus.example",
                             recipients=[f"email:{board}", f"email:{unique('new')}"], channels=["email"])
    (attempt,) = outbox.send_due(conn, T0 + dt.timedelta(hours=1), make_link=fake_link, run_id=restricted_run.run_id)
    assert attempt["status"] == "failed_permanent" and "Gate C" in attempt["error"]
    assert handler.to(board) == []
    assert [o for o, _ in audit_rows(conn, "delivery.refused", f"email:{board}")] == ["denied"]


@pytest.fixture()
def run_with_external_variant(conn, internal_run, tmp_path):
    """A published run whose manifest lists an 'external' (redacted) file besides the internal ones,
    as the redaction step will produce: a copy of a real run's folder and record."""
    import shutil

    from orchestration.runs import records

    folder = tmp_path / "published"
    shutil.copytree(internal_run.location, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "incident_summary.external.csv").write_text("severity,count\nhigh,1\n")
    data = (folder / "incident_summary.external.csv").read_bytes()
    manifest["files"] = [{**f, "variant": "internal"} for f in manifest["files"]] + [
        {"name": "incident_summary.external.csv", "format": "csv", "bytes": len(data),
         "sha256": hashlib.sha256(data).hexdigest(), "variant": "external"}]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    run_id = records.new_run_id()
    with conn, conn.cursor() as cur:
        cur.execute("""insert into control.report_runs
                       select (jsonb_populate_record(r, jsonb_build_object('run_id', %s, 'artifact_location', %s,
                                                                            'input_hash', 'copy-' || %s))).*
                         from control.report_runs r where run_id = %s""",
                    (run_id, str(folder), run_id, internal_run.run_id))
    return run_id


def test_external_recipients_receive_only_the_external_variant(conn, smtp, run_with_external_variant):
    handler, _ = smtp
    partner, colleague = unique("partner"), unique("colleague")
    result = delivery_service.deliver_run(conn, run_with_external_variant, [f"email:{partner};external", f"email:{colleague}"],
                                make_link=fake_link, now=T0)
    assert [a["status"] for a in result.attempts] == ["sent", "sent"]
    (to_partner,) = handler.to(partner)
    (to_colleague,) = handler.to(colleague)
    assert [p.get_filename() for p in to_partner.iter_attachments()] == ["incident_summary.external.csv"]
    assert "incident_summary.external.csv" not in [p.get_filename() for p in to_colleague.iter_attachments()]
    assert rows(conn, run_with_external_variant, {partner})[partner].variant == "external"


# ---------------------------------------------------------------- retry command, sensor, audit chain


def test_retry_command_resends_only_failed_deliveries(conn, smtp, internal_run):
    from click.testing import CliRunner

    from orchestration.cli.main import main

    handler, _ = smtp
    ok, rejected = unique("fine"), unique("full-mailbox")
    handler.plan[rejected] = [552]
    delivery_service.deliver_run(conn, internal_run.run_id, [f"email:{ok}", f"email:{rejected}"], make_link=fake_link, now=T0)
    assert rows(conn, internal_run.run_id, {rejected})[rejected].status == "failed_permanent"
    out = CliRunner().invoke(main, ["delivery", "retry", "--run", internal_run.run_id, "--as", "ops@nexus.example"])
    assert out.exit_code == 0, out.output
    assert f"email:{rejected}: sent" in out.output and ok not in out.output
    assert (len(handler.to(ok)), len(handler.to(rejected))) == (1, 1)
    assert audit_rows(conn, "delivery.retry", f"run {internal_run.run_id}")[-1][0] == "succeeded"


def test_outbox_sensor_sends_due_deliveries(conn, smtp, internal_run):

    from orchestration.defs.delivery.sensors import delivery_outbox_sensor
    from orchestration.delivery import links

    handler, _ = smtp
    to = unique("sensor")
    handler.plan[to] = [450]
    delivery_service.deliver_run(conn, internal_run.run_id, [f"email:{to}"], make_link=fake_link, now=T0)
    with conn, conn.cursor() as cur:  # due now (real clock): the sensor uses the current time
        cur.execute("update control.deliveries set next_attempt_at = now() - interval '1 second' where address = %s", (to,))
    links.set_link_maker(fake_link)
    try:
        result = delivery_outbox_sensor(sensor_context())
    finally:
        links.set_link_maker(links.secure_link)
    assert "sent" in result.skip_message
    assert len(handler.to(to)) == 1 and rows(conn, internal_run.run_id, {to})[to].status == "sent"


def test_audit_chain_holds_after_deliveries(conn, internal_run):
    assert audit.verify(conn).ok


def test_recipient_forms_and_the_distribution_hash():
    from orchestration.delivery import Recipient, RecipientError, distribution_hash

    assert Recipient.parse("CISO@Acme.example") == Recipient("email", "CISO@Acme.example")
    assert Recipient.parse("https://h.example/x").kind == "webhook"
    assert Recipient.parse("s3://b/p;endpoint=http://127.0.0.1:9").config == {"endpoint_url": "http://127.0.0.1:9"}
    partner = Recipient.parse("email:a@partner.example;external;principal=p1")
    assert (partner.external, partner.principal_id, partner.variant) == (True, "p1", "external")
    for bad in ("fax:123", "email:no-at-sign", "webhook:ftp://x", "bucket:/tmp/x", "email:a@b.example;secret"):
        with pytest.raises(RecipientError):
            Recipient.parse(bad)
    base = distribution_hash(["email:a@acme.example", "email:b@acme.example"], ["email"])
    assert distribution_hash(["email:B@acme.example", "a@acme.example"], ["email"]) == base  # order, case, form
    assert distribution_hash(["email:a@acme.example", "email:b@acme.example", "email:c@acme.example"], ["email"]) != base
    assert distribution_hash(["email:a@acme.example", "email:b@acme.example"], ["email", "webhook"]) != base
    assert distribution_hash(["email:a@acme.example", "email:b@acme.example;external"], ["email"]) != base


def test_scheduled_run_is_delivered_to_the_schedules_recipients_under_its_approval(conn, smtp, restricted_run, schedule_id):

    handler, _ = smtp
    delivery_service.approve(conn, schedule_id, approver=APPROVER, recipients=["email:ciso-scheduled@acme.example"],
                             channels=["email"])
    result = delivery_service.deliver_scheduled_run(conn, restricted_run.run_id, make_link=fake_link, now=T0)
    assert [a["status"] for a in result.attempts] == ["sent"]
    (msg,) = handler.to("ciso-scheduled@acme.example")
    assert list(msg.iter_attachments()) == [] and "https://links.test/" in msg.get_body().get_content()
