"""Sending what the outbox holds: claim a due row, check Gate C and the allow-list again, call
its channel (e-mail, webhook, bucket) with the run's published files, record how it ended.

A retry touches only rows that are due and not sent: recipients already reached are never
contacted again. Failures are classified by the channel (SendFailure.transient).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Any

from orchestration.artifacts import which_store
from orchestration.artifacts.store import StorageError
from orchestration.delivery import approvals, bucket, email, links, webhook
from orchestration.delivery import records as rows
from orchestration.delivery.errors import SendFailure
from orchestration.delivery.recipients import SENSITIVE, Recipient
from orchestration.links.service import LinkError
from orchestration.runs import records
from orchestration.runs.run_record import RunRecord


def utc(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)


def files_of(manifest: dict[str, Any], variant: str) -> list[dict[str, Any]]:
    """The manifest's files of a variant; files without a 'variant' field are 'internal'."""
    return [f for f in manifest.get("files", []) if f.get("variant", "internal") == variant]


def _links(make_link, row: rows.Delivery, files: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for f in files:
        try:
            url = make_link(row.run_id, f["format"], row.principal_id, row.variant)
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


def _email(row: rows.Delivery, run: RunRecord, manifest, files, paths, make_link) -> tuple[str, None]:
    settings = email.SmtpSettings.from_env()
    subject = _subject(manifest, run)
    total = sum(int(f.get("bytes") or p.stat().st_size) for f, p in zip(files, paths, strict=True))
    if row.sensitivity in SENSITIVE or total > email.ATTACH_LIMIT_BYTES:  # links, never the files
        lines = [f"  {link['name']}: {link['url']}" for link in _links(make_link, row, files)]
        body = "\n".join([subject, "", "Download (links expire):", *lines, "", f"run {row.run_id}"])
        attachments: list[Path] = []
    else:
        body = "\n".join([subject, "", "The report files are attached:", *[f"  {p.name}" for p in paths],
                          "", f"run {row.run_id}"])
        attachments = paths
    msg = email.build_message(sender=settings.sender, to=row.address, subject=subject, body=body,
                              msg_id=email.message_id(row.idempotency_key, settings.sender), attachments=attachments)
    return email.send(settings, msg), None


def _webhook(conn, row: rows.Delivery, run: RunRecord, manifest, files, make_link) -> tuple[str, int]:
    secret = webhook.endpoint_secret(conn, row.tenant_id, row.address)
    if not secret:
        raise SendFailure(f"webhook {row.address} is no longer registered (no signing secret)", transient=False)
    payload = {
        "type": "report.published",
        "delivery_id": row.idempotency_key,
        "run_id": row.run_id,
        "template": {k: manifest.get("template", {}).get(k) for k in ("key", "version", "sensitivity")},
        "tenant_id": row.tenant_id,
        "period": {"key": run.period_key, **manifest.get("window", {})},
        "variant": row.variant,
        "files": [{k: f.get(k) for k in ("name", "format", "bytes", "sha256")} for f in files],
        "links": _links(make_link, row, files),
    }
    msg_id = webhook.webhook_id(row.idempotency_key)
    return msg_id, webhook.post(row.address, payload, secret=secret, msg_id=msg_id)


def _send(conn, row: rows.Delivery, make_link, tmp: Path) -> tuple[str | None, int | None]:
    """Call the channel; returns (provider message id, http status) once it acknowledged."""
    run = records.get_run(conn, row.run_id)
    if run is None or run.state != "completed" or not run.artifact_location:
        raise SendFailure(f"run {row.run_id} is {run.state if run else 'gone'}: its files can no longer be delivered",
                          transient=False)
    try:
        store, store_key = which_store.for_location(run.artifact_location)
        manifest = store.read_manifest(store_key)
        files = files_of(manifest, row.variant)
        if not files:
            raise SendFailure(f"the run has no '{row.variant}' variant", transient=False)
        paths = _local_files(store, store_key, files, tmp)
    except StorageError as exc:  # the store is another system: it may come back
        raise SendFailure(f"cannot read the run's files: {exc}", transient=True) from exc
    if row.channel == "email":
        return _email(row, run, manifest, files, paths, make_link)
    if row.channel == "webhook":
        return _webhook(conn, row, run, manifest, files, make_link)
    if row.channel == "bucket":
        return bucket.drop(row.address, row.config or {}, row.run_id, paths), None
    raise SendFailure(f"unknown channel {row.channel}", transient=False)


def _gate_refusal(conn, row: rows.Delivery) -> str | None:
    """Gate C and the allow-list again at send time: an approval may have been replaced since."""
    if row.sensitivity in SENSITIVE:
        reason = approvals.approval_refusal(conn, row.schedule_id, row.distribution_hash or "",
                                            pipeline_id=row.pipeline_id)
        if reason:
            return f"Gate C: {reason}"
    if row.channel == "email":
        return approvals.domain_refusal(conn, row.tenant_id, Recipient("email", row.address))
    return None


def attempt(conn, row: rows.Delivery, now: dt.datetime, make_link) -> dict[str, Any]:
    """One attempt at a claimed row: {delivery_id, channel, address, attempt, status, error}."""
    entry = {"delivery_id": row.delivery_id, "channel": row.channel, "address": row.address, "attempt": row.attempts}
    refusal = _gate_refusal(conn, row)
    if refusal:
        status = rows.mark_failed(conn, row, now, SendFailure(refusal, transient=False), refused=True)
        return {**entry, "status": status, "error": refusal}
    try:
        with tempfile.TemporaryDirectory(prefix="nexus-delivery-") as tmp:
            provider_id, http_status = _send(conn, row, make_link, Path(tmp))
    except SendFailure as failure:
        return {**entry, "status": rows.mark_failed(conn, row, now, failure, refused=failure.refused),
                "error": str(failure)}
    rows.mark_sent(conn, row, now, provider_id, http_status)
    return {**entry, "status": "sent", "error": None}


def send_due(conn, now: dt.datetime | None = None, *, make_link=None, run_id: str | None = None,
             limit: int = 200) -> list[dict[str, Any]]:
    """Send every row that is due (new, failed transiently and due, or stuck in 'sending' past the
    lease); returns one {delivery_id, channel, address, status, error} per attempt."""
    now = utc(now)
    make_link = make_link or links.make_link
    done: list[dict[str, Any]] = []
    tried: list[int] = []
    while len(done) < limit:
        row = rows.claim(conn, now, run_id, tried)
        if row is None:
            break
        tried.append(row.delivery_id)
        done.append(attempt(conn, row, now, make_link))
    return done
