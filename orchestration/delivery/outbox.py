"""The delivery outbox: enqueue one row per run x recipient x channel, send, retry, report.

At-least-once with dedupe:
- A row's idempotency key is unique, so delivering a run to the same recipient again enqueues
  nothing and sends nothing that was already sent.
- A row is claimed ('sending', attempts + 1, committed) before the channel is called and marked
  'sent' right after the channel acknowledged (SMTP accepted, HTTP 2xx, S3 ETag). A process that
  dies in between leaves it 'sending'; after SENDING_LEASE it is claimed again and resent with
  the same Message-ID / webhook-id, which the receiver can deduplicate.
- Transient failures (SMTP 4xx, connection errors and timeouts, HTTP 429/5xx) become
  'failed_transient' with next_attempt_at = now + exponential backoff; permanent ones (SMTP 5xx,
  other HTTP 4xx such as 410) 'failed_permanent'. After MAX_ATTEMPTS a transient row gives up.
- A retry (`send_due`) touches only rows that are due and not sent: recipients already reached
  are never contacted again.
Every send and every refusal is in the audit log.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestration.access import audit
from orchestration.access import policy as access
from orchestration.artifacts import storage
from orchestration.db.warehouse import dict_rows
from orchestration.delivery import approvals, bucket, email, links, outbound, webhook
from orchestration.delivery.errors import DeliveryRefused, SendFailure
from orchestration.delivery.recipients import SENSITIVE, Recipient, distribution_hash, idempotency_key
from orchestration.links.service import LinkError
from orchestration.runs import records
from orchestration.runs.records import RunRecord

STATUSES = ("pending", "sending", "sent", "failed_transient", "failed_permanent")
BACKOFF_BASE = dt.timedelta(minutes=1)
BACKOFF_MAX = dt.timedelta(hours=1)
MAX_ATTEMPTS = 8
SENDING_LEASE = dt.timedelta(minutes=10)
DELIVERY_ACTOR = "svc:delivery"


@dataclass
class DeliveryResult:
    run_id: str
    enqueued: list[str] = field(default_factory=list)      # idempotency keys of new rows
    refused: list[tuple[str, str]] = field(default_factory=list)  # (recipient identity, reason)
    attempts: list[dict[str, Any]] = field(default_factory=list)  # what send_due did


def _utc(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)


def backoff(attempts: int) -> dt.timedelta:
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def _schedule_id(run: dict[str, Any]) -> int | None:
    sid = run.schedule_id
    return int(sid) if sid is not None and str(sid).isdigit() else None


def _files(manifest: dict[str, Any], variant: str) -> list[dict[str, Any]]:
    """The manifest's files of a variant; files without a 'variant' field are 'internal'."""
    return [f for f in manifest.get("files", []) if f.get("variant", "internal") == variant]


def _refuse(conn, result: DeliveryResult | None, run: RunRecord, recipient_ident: str, reason: str,
            *, actor: str, details: dict[str, Any] | None = None) -> None:
    audit.record_now(conn, actor=actor, action="delivery.refused", target=recipient_ident, outcome="denied",
                     tenant_id=run.tenant_id, correlation_id=run.run_id,
                     details={"run_id": run.run_id, "reason": reason, **(details or {})})
    if result is not None:
        result.refused.append((recipient_ident, reason))


def _outbound_refusal(recipient: Recipient) -> str | None:
    """The outbound check at enqueue time, for a webhook URL or a bucket's custom endpoint."""
    url = recipient.address if recipient.kind == "webhook" else recipient.config.get("endpoint_url")
    if not url or recipient.kind == "email":
        return None
    try:
        outbound.check_now(url)
    except outbound.OutboundRefused as exc:
        return str(exc)
    return None


def deliver_run(conn, run_id: str, recipients: Iterable[Recipient | str], *, make_link=None,
                now: dt.datetime | None = None, actor: str = access.SCHEDULER) -> DeliveryResult:
    """Gate C, allow-list and variant checks, enqueue one row per recipient, then send what is due.

    Refused recipients are audited and listed in the result; nothing is raised for them, so a
    refusal of one recipient does not stop the others (a Gate C refusal stops them all).
    """
    now = _utc(now)
    result = DeliveryResult(run_id)
    run = records.get_run(conn, run_id)
    if run is None:
        raise DeliveryRefused(f"no run {run_id}")
    recipients = [r if isinstance(r, Recipient) else Recipient.parse(r) for r in recipients]
    if run.state != "completed" or not run.artifact_location:
        reason = f"run {run_id} is {run.state}: only a completed, published run is delivered"
        for r in recipients:
            _refuse(conn, result, run, r.identity, reason, actor=actor)
        return result
    store, run_key = storage.for_location(run.artifact_location)
    manifest = store.read_manifest(run_key)
    sensitivity = manifest.get("template", {}).get("sensitivity", "restricted")
    schedule_id = _schedule_id(run)
    digest = distribution_hash(recipients, {r.kind for r in recipients})

    if sensitivity in SENSITIVE:  # Gate C: the whole set is approved, or nothing goes out
        reason = approvals.approval_refusal(conn, schedule_id, digest)
        if reason:
            for r in recipients:
                _refuse(conn, result, run, r.identity, f"Gate C: {reason}", actor=actor,
                        details={"sensitivity": sensitivity, "schedule_id": schedule_id, "distribution_hash": digest})
            return result

    rows = []
    for r in recipients:
        reason = approvals.domain_refusal(conn, run.tenant_id, r)
        if reason is None and not _files(manifest, r.variant):
            reason = (f"the run has no '{r.variant}' variant"
                      + (": external recipients receive only the redacted external variant" if r.external else ""))
        if reason is None and r.kind == "webhook" and not webhook.endpoint_secret(conn, run.tenant_id, r.address):
            reason = f"webhook {r.address} is not registered for tenant {run.tenant_id} (no signing secret)"
        if reason is None:
            reason = _outbound_refusal(r)
        if reason:
            _refuse(conn, result, run, r.identity, reason, actor=actor)
            continue
        rows.append(r)

    with conn:
        with conn.cursor() as cur:
            for r in rows:
                key = idempotency_key(run_id, r)
                cur.execute(
                    """insert into control.deliveries
                           (idempotency_key, run_id, tenant_id, template_key, sensitivity, schedule_id, channel,
                            address, principal_id, external, variant, config, distribution_hash,
                            next_attempt_at, created_at, updated_at)
                       values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                       on conflict (idempotency_key) do nothing returning idempotency_key""",
                    (key, run_id, run.tenant_id, run.template_key, sensitivity, schedule_id, r.kind,
                     r.address, r.principal_id, r.external, r.variant, json.dumps(r.config),
                     digest if sensitivity in SENSITIVE else None, now, now, now),
                )
                if cur.fetchone():
                    result.enqueued.append(key)
        if result.enqueued:
            audit.record(conn, actor=actor, action="delivery.enqueue", target=f"run {run_id}", outcome="succeeded",
                         tenant_id=run.tenant_id, correlation_id=run_id,
                         details={"recipients": [r.identity for r in rows], "new": len(result.enqueued)})
    result.attempts = send_due(conn, now, make_link=make_link, run_id=run_id)
    return result


def schedule_recipients(conn, schedule_id: int) -> list[Recipient]:
    """The recipients stored on a runtime schedule (control.schedules.recipients)."""
    with conn.cursor() as cur:
        cur.execute("select recipients from control.schedules where schedule_id = %s", (schedule_id,))
        row = cur.fetchone()
    if row is None:
        raise DeliveryRefused(f"no schedule {schedule_id}")
    return [Recipient.parse(r) for r in row[0]]


def deliver_scheduled_run(conn, run_id: str, *, make_link=None, now: dt.datetime | None = None,
                          actor: str = access.SCHEDULER) -> DeliveryResult:
    """deliver_run to the recipients of the schedule that produced the run (none: nothing to do)."""
    run = records.get_run(conn, run_id)
    schedule_id = _schedule_id(run or {})
    if run is None or schedule_id is None:
        return DeliveryResult(run_id)
    recipients = schedule_recipients(conn, schedule_id)
    if not recipients:
        return DeliveryResult(run_id)
    return deliver_run(conn, run_id, recipients, make_link=make_link, now=now, actor=actor)


# ---------------------------------------------------------------- sending


def _claim(conn, now: dt.datetime, run_id: str | None, exclude: list[int]) -> dict[str, Any] | None:
    with conn:
        with conn.cursor() as cur:
            cur.execute(
                """update control.deliveries d
                      set status = 'sending', attempts = d.attempts + 1, claimed_at = %(now)s, updated_at = %(now)s
                    where d.delivery_id = (
                        select delivery_id from control.deliveries
                         where ((status in ('pending', 'failed_transient') and next_attempt_at <= %(now)s)
                                or (status = 'sending' and claimed_at <= %(stale)s))
                           and (%(run)s::text is null or run_id = %(run)s)
                           and not (delivery_id = any(%(exclude)s))
                         order by next_attempt_at, delivery_id
                         for update skip locked limit 1)
                    returning d.*""",
                {"now": now, "stale": now - SENDING_LEASE, "run": run_id, "exclude": exclude or [0]},
            )
            rows = dict_rows(cur)
    return rows[0] if rows else None


def _mark_sent(conn, row: dict[str, Any], now: dt.datetime, provider_id: str | None, http_status: int | None) -> None:
    with conn:
        with conn.cursor() as cur:
            cur.execute(
                """update control.deliveries set status = 'sent', sent_at = %s, updated_at = %s, last_error = null,
                          provider_message_id = %s, http_status = %s
                    where delivery_id = %s""",
                (now, now, provider_id, http_status, row["delivery_id"]),
            )
        audit.record(conn, actor=DELIVERY_ACTOR, action="delivery.send", target=f"{row['channel']}:{row['address']}",
                     outcome="succeeded", tenant_id=row["tenant_id"], correlation_id=row["run_id"],
                     details={"run_id": row["run_id"], "delivery_id": row["delivery_id"],
                              "idempotency_key": row["idempotency_key"], "attempt": row["attempts"],
                              "variant": row["variant"], "provider_message_id": provider_id, "http_status": http_status})


def _mark_failed(conn, row: dict[str, Any], now: dt.datetime, failure: SendFailure, *, refused: bool = False) -> str:
    gave_up = failure.transient and row["attempts"] >= MAX_ATTEMPTS
    status = "failed_transient" if failure.transient and not gave_up else "failed_permanent"
    error = str(failure) + (f" (gave up after {row['attempts']} attempts)" if gave_up else "")
    next_at = now + backoff(row["attempts"]) if status == "failed_transient" else now
    with conn:
        with conn.cursor() as cur:
            cur.execute(
                """update control.deliveries set status = %s, last_error = %s, next_attempt_at = %s, updated_at = %s,
                          http_status = coalesce(%s, http_status)
                    where delivery_id = %s""",
                (status, error, next_at, now, failure.http_status, row["delivery_id"]),
            )
        audit.record(conn, actor=DELIVERY_ACTOR, action="delivery.refused" if refused else "delivery.send",
                     target=f"{row['channel']}:{row['address']}", outcome="denied" if refused else "failed",
                     tenant_id=row["tenant_id"], correlation_id=row["run_id"],
                     details={"run_id": row["run_id"], "delivery_id": row["delivery_id"],
                              "idempotency_key": row["idempotency_key"], "attempt": row["attempts"],
                              "status": status, "error": error, "http_status": failure.http_status,
                              **({"next_attempt_at": next_at.isoformat()} if status == "failed_transient" else {})})
    return status


def _links(make_link, run_id: str, files: list[dict[str, Any]], principal_id: str | None, variant: str) -> list[dict[str, str]]:
    out = []
    for f in files:
        try:
            url = make_link(run_id, f["format"], principal_id, variant)
        except LinkError as exc:  # refused by policy (no principal, role, membership): retrying cannot help
            raise SendFailure(f"no link for {f['name']}: {exc}", transient=False) from exc
        except Exception as exc:  # noqa: BLE001 - the link service is another system: retry later
            raise SendFailure(f"no link for {f['name']}: {type(exc).__name__}: {exc}", transient=True) from exc
        out.append({"format": f["format"], "name": f["name"], "url": url})
    return out


def _subject(manifest: dict[str, Any], run: RunRecord) -> str:
    template = manifest.get("template", {})
    return (f"[{template.get('sensitivity', '?')}] {template.get('key', run.template_key)} "
            f"v{template.get('version', run.template_version)} - {run.tenant_id} {run.period_key or ''}").strip()


def _send(conn, row: dict[str, Any], make_link) -> tuple[str | None, int | None]:
    """Call the channel; returns (provider message id, http status) once it acknowledged."""
    with tempfile.TemporaryDirectory(prefix="nexus-delivery-") as tmp:
        return _send_from(conn, row, make_link, Path(tmp))


def _local_files(store, key: str, files: list[dict[str, Any]], into: Path) -> list[Path]:
    """The files as local paths: the folder itself for the local store, a streamed copy from S3."""
    if store.kind == "local":
        return [Path(store.location(key)) / f["name"] for f in files]
    paths = []
    for f in files:
        path = into / f["name"]
        with store.open(key, f["name"]) as src, path.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        paths.append(path)
    return paths


def _send_from(conn, row: dict[str, Any], make_link, tmp: Path) -> tuple[str | None, int | None]:
    run = records.get_run(conn, row["run_id"])
    if run is None or run.state != "completed" or not run.artifact_location:
        raise SendFailure(f"run {row['run_id']} is {run.state if run else 'gone'}: its files can no longer be delivered",
                          transient=False)
    try:
        store, store_key = storage.for_location(run.artifact_location)
        manifest = store.read_manifest(store_key)
        files = _files(manifest, row["variant"])
        if not files:
            raise SendFailure(f"the run has no '{row['variant']}' variant", transient=False)
        paths = _local_files(store, store_key, files, tmp)
    except storage.StorageError as exc:  # the store is another system: it may come back
        raise SendFailure(f"cannot read the run's files: {exc}", transient=True) from exc
    sensitive = row["sensitivity"] in SENSITIVE
    key = row["idempotency_key"]

    if row["channel"] == "email":
        settings = email.SmtpSettings.from_env()
        subject = _subject(manifest, run)
        total = sum(int(f.get("bytes") or p.stat().st_size) for f, p in zip(files, paths, strict=True))
        if sensitive or total > email.ATTACH_LIMIT_BYTES:
            found = _links(make_link, row["run_id"], files, row["principal_id"], row["variant"])
            lines = [f"  {link['name']}: {link['url']}" for link in found]
            body = "\n".join([f"{subject}", "", "Download (links expire):", *lines, "", f"run {row['run_id']}"])
            attachments: list[Path] = []
        else:
            body = "\n".join([subject, "", "The report files are attached:", *[f"  {p.name}" for p in paths],
                              "", f"run {row['run_id']}"])
            attachments = paths
        msg = email.build_message(sender=settings.sender, to=row["address"], subject=subject, body=body,
                                  msg_id=email.message_id(key, settings.sender), attachments=attachments)
        return email.send(settings, msg), None

    if row["channel"] == "webhook":
        secret = webhook.endpoint_secret(conn, row["tenant_id"], row["address"])
        if not secret:
            raise SendFailure(f"webhook {row['address']} is no longer registered (no signing secret)", transient=False)
        payload = {
            "type": "report.published",
            "delivery_id": key,
            "run_id": row["run_id"],
            "template": {k: manifest.get("template", {}).get(k) for k in ("key", "version", "sensitivity")},
            "tenant_id": row["tenant_id"],
            "period": {"key": run.period_key, **manifest.get("window", {})},
            "variant": row["variant"],
            "files": [{k: f.get(k) for k in ("name", "format", "bytes", "sha256")} for f in files],
            "links": _links(make_link, row["run_id"], files, row["principal_id"], row["variant"]),
        }
        msg_id = webhook.webhook_id(key)
        status = webhook.post(row["address"], payload, secret=secret, msg_id=msg_id)
        return msg_id, status

    if row["channel"] == "bucket":
        return bucket.drop(row["address"], row["config"] or {}, row["run_id"], paths), None

    raise SendFailure(f"unknown channel {row['channel']}", transient=False)


def _gate_refusal(conn, row: dict[str, Any]) -> str | None:
    """Gate C and the allow-list again at send time: an approval may have been replaced since."""
    if row["sensitivity"] in SENSITIVE:
        reason = approvals.approval_refusal(conn, row["schedule_id"], row["distribution_hash"] or "")
        if reason:
            return f"Gate C: {reason}"
    if row["channel"] == "email":
        return approvals.domain_refusal(conn, row["tenant_id"], Recipient("email", row["address"]))
    return None


def send_due(conn, now: dt.datetime | None = None, *, make_link=None, run_id: str | None = None,
             limit: int = 200) -> list[dict[str, Any]]:
    """Send every row that is due (new, failed transiently and due, or stuck in 'sending' past the
    lease); returns one {delivery_id, channel, address, status, error} per attempt."""
    now = _utc(now)
    make_link = make_link or links.make_link
    done: list[dict[str, Any]] = []
    tried: list[int] = []
    while len(done) < limit:
        row = _claim(conn, now, run_id, tried)
        if row is None:
            break
        tried.append(row["delivery_id"])
        entry = {"delivery_id": row["delivery_id"], "channel": row["channel"], "address": row["address"],
                 "attempt": row["attempts"]}
        refusal = _gate_refusal(conn, row)
        if refusal:
            entry.update(status=_mark_failed(conn, row, now, SendFailure(refusal, transient=False), refused=True),
                         error=refusal)
        else:
            try:
                provider_id, http_status = _send(conn, row, make_link)
            except SendFailure as failure:
                entry.update(status=_mark_failed(conn, row, now, failure, refused=failure.refused), error=str(failure))
            else:
                _mark_sent(conn, row, now, provider_id, http_status)
                entry.update(status="sent", error=None)
        done.append(entry)
    return done


# ---------------------------------------------------------------- status and manual retry


def list_deliveries(conn, run_id: str | None = None) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute("""select delivery_id, run_id, tenant_id, channel, address, external, variant, status, attempts,
                              last_error, next_attempt_at, sent_at, provider_message_id, http_status, idempotency_key
                         from control.deliveries where (%(run)s::text is null or run_id = %(run)s)
                        order by delivery_id""", {"run": run_id})
        return dict_rows(cur)


def channel_counts(conn, run_id: str | None = None) -> dict[str, dict[str, int]]:
    """Delivery success by channel: {channel: {status: count}}."""
    with conn.cursor() as cur:
        cur.execute("""select channel, status, count(*) from control.deliveries
                        where (%(run)s::text is null or run_id = %(run)s) group by channel, status""", {"run": run_id})
        counts: dict[str, dict[str, int]] = {}
        for channel, status, n in cur.fetchall():
            counts.setdefault(channel, {})[status] = n
    return counts


def retry(conn, run_id: str | None = None, *, actor: str, make_link=None, now: dt.datetime | None = None,
          include_permanent: bool = True) -> list[dict[str, Any]]:
    """Make failed rows due now (permanent ones too: an operator fixed the endpoint), then send.
    Sent rows are never touched."""
    now = _utc(now)
    statuses = ["failed_transient"] + (["failed_permanent"] if include_permanent else [])
    with conn:
        with conn.cursor() as cur:
            cur.execute("""update control.deliveries set status = 'pending', next_attempt_at = %(now)s, updated_at = %(now)s
                            where status = any(%(statuses)s) and (%(run)s::text is null or run_id = %(run)s)
                        returning delivery_id""", {"now": now, "statuses": statuses, "run": run_id})
            ids = [r[0] for r in cur.fetchall()]
        audit.record(conn, actor=actor, action="delivery.retry", target=f"run {run_id}" if run_id else "all runs",
                     outcome="succeeded", correlation_id=run_id, details={"requeued": ids})
    return send_due(conn, now, make_link=make_link, run_id=run_id)
