"""`nexus-reports`: the command line of the product."""

from __future__ import annotations

import datetime as dt
import functools
import os
import subprocess
import sys

import click

from orchestration.db import warehouse
from orchestration.exports import formats
from orchestration.metrics import dbt_manifest
from orchestration.runs import records as run_records
from orchestration.settings import REPO_ROOT, get_settings


class UserError(click.ClickException):
    """Shown as one line, without a traceback: the user can act on it."""


def user_errors(fn):
    """Errors a user can act on become one line on stderr and exit 1, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from orchestration.access.policy import AccessDenied
        from orchestration.artifacts.storage import StorageError
        from orchestration.catalog.templates import TemplateError
        from orchestration.errors import ServiceError
        from orchestration.governance.lifecycle import GovernanceError
        from orchestration.links.service import LinkError

        try:
            return fn(*args, **kwargs)
        except (warehouse.WarehouseError, dbt_manifest.DbtError, TemplateError, ServiceError,
                GovernanceError, AccessDenied, LinkError, StorageError, ValueError) as exc:
            raise UserError(str(exc)) from exc

    return wrapper


@click.group(help="Nexus Reports: governed SOC reports from dbt metrics, run by Dagster.")
def main() -> None:
    pass


@main.command(help="Create schemas, the report_reader role and the control tables (idempotent).")
@user_errors
def init() -> None:
    warehouse.ensure_database()
    click.echo("warehouse ready")


@main.command(help="Write deterministic sample SOC data into the raw schema (replaces what is there).")
@click.option("--tenants", default=3, show_default=True, type=click.IntRange(1, 500))
@click.option("--incidents", default=20_000, show_default=True, type=click.IntRange(0, 50_000_000))
@click.option("--seed", "seed_value", default=42, show_default=True, type=int)
@click.option("--end-date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Data ends just before this date [default: today, UTC]")
@user_errors
def seed(tenants: int, incidents: int, seed_value: int, end_date) -> None:
    from orchestration.dev import seed as seeding

    warehouse.ensure_database()
    started = dt.datetime.now()
    with warehouse.connection() as conn:
        counts = seeding.seed(
            conn, tenants=tenants, incidents=incidents, seed=seed_value,
            end_date=end_date.date() if end_date else None,
        )
        from orchestration.access import policy

        people = policy.seed_sample_principals(conn, seeding.tenant_ids(tenants))
    seconds = (dt.datetime.now() - started).total_seconds()
    click.echo(f"  control.principals             {people:>12,} sample principals")
    for table, rows in counts.items():
        click.echo(f"  raw.{table:<26} {rows:>12,} rows")
    click.echo(f"seeded in {seconds:.1f}s")


@main.command("manifest", help="Parse the dbt project into dbt_project/target/manifest.json (no database needed).")
@user_errors
def manifest_cmd() -> None:
    path = dbt_manifest.parse()
    click.echo(f"dbt manifest written: {path}")


@main.command(help="Build the dbt project (models, tests, unit tests) in the warehouse.")
@click.option("--select", default=None, help="dbt selection")
@user_errors
def build(select: str | None) -> None:
    warehouse.ensure_database()
    dbt_manifest.build(select=select)
    click.echo("dbt build passed")


@main.command(help="Seed, build and materialize every standard report for each sample tenant for the last complete month.")
@click.option("--tenants", default=3, show_default=True, type=click.IntRange(1, 500))
@click.option("--incidents", default=20_000, show_default=True, type=click.IntRange(1, 50_000_000))
@click.option("--period", default=None, help="YYYY-MM [default: the last complete month]")
@user_errors
def demo(tenants: int, incidents: int, period: str | None) -> None:
    from orchestration.dev.demo import print_table, run_demo

    results = run_demo(tenant_count=tenants, incidents=incidents, period=period, echo=click.echo)
    print_table(results, click.echo)
    if any(not r.ok for r in results):
        raise UserError("some report runs failed; see the table above")


@main.command(help="Start the Dagster UI (webserver and daemon) and the link service on this instance's data.")
@click.option("--port", default=3000, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--links-port", default=8088, show_default=True, type=int, help="port of the link service")
@user_errors
def dev(port: int, host: str, links_port: int) -> None:
    from orchestration.defs import dagster_home

    warehouse.ensure_database()
    home = dagster_home.prepare()
    if not dbt_manifest.MANIFEST_PATH.exists():
        dbt_manifest.parse()
    click.echo(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={home}); Ctrl-C stops it")
    bindir = os.path.dirname(sys.executable)
    # The link service (downloads) next to Dagster's webserver and daemon; it stops with them.
    click.echo(f"link service on http://{host}:{links_port}")
    link_service = subprocess.Popen(
        [os.path.join(bindir, "nexus-reports"), "serve", "--host", host, "--port", str(links_port)], cwd=REPO_ROOT)
    try:
        # This process holds the embedded server for as long as Dagster runs.
        proc = subprocess.run(
            [os.path.join(bindir, "dagster"), "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-p", str(port), "-h", host],
            cwd=REPO_ROOT,
        )
    finally:
        # Ctrl-C reached it too (same process group); otherwise ask it to stop, then insist.
        if link_service.poll() is None:
            link_service.terminate()
        try:
            link_service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            link_service.kill()
    sys.exit(proc.returncode)


@main.command(help="Serve download links (GET /links/<token>): every request is checked and recorded.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8088, show_default=True, type=int)
@user_errors
def serve(host: str, port: int) -> None:
    from orchestration.links import web

    warehouse.ensure_database()
    click.echo(f"link service on http://{host}:{port}; Ctrl-C stops it")
    web.serve(host=host, port=port)


@main.command("where", help="Print where data, artifacts and Dagster's home are.")
@user_errors
def where() -> None:
    s = get_settings()
    click.echo(f"NEXUS_HOME     {s.home}")
    click.echo(f"database       {'embedded (pgserver) in ' + str(s.pgdata) if s.embedded else 'REPORTS_DATABASE_URL'}")
    from orchestration.artifacts import storage

    click.echo(f"artifacts      {storage.get_store(s).describe()}")
    click.echo(f"DAGSTER_HOME   {s.dagster_home}")


# ---------------------------------------------------------------- governance


@main.group(help="Report templates: versions, lifecycle (draft -> approved -> deprecated) and Gate A.")
def templates() -> None:
    pass


@templates.command("list", help="Template versions with their state (system ones, plus a tenant's custom ones).")
@click.option("--tenant", default=None, help="also show this tenant's custom templates")
@user_errors
def templates_list(tenant: str | None) -> None:
    from orchestration.governance import lifecycle as governance

    with warehouse.connection() as conn:
        governance.register_system_templates(conn)
        rows = governance.list_versions(conn, tenant_id=tenant)
    click.echo(f"{'template':<28} {'ver':>3}  {'state':<10} {'owner':<10} {'author':<26} approved by")
    for r in rows:
        click.echo(f"{r['template_key']:<28} {r['version']:>3}  {r['state']:<10} {r['owner_tenant'] or 'system':<10} "
                   f"{r['author']:<26} {r['approved_by'] or '-'}")


@templates.command("show", help="One template version: content, state and history.")
@click.argument("key")
@click.option("--version", type=int, default=None)
@click.option("--tenant", default=None)
@user_errors
def templates_show(key: str, version: int | None, tenant: str | None) -> None:
    import yaml

    from orchestration.governance import lifecycle as governance

    with warehouse.connection() as conn:
        governance.register_system_templates(conn)
        rows = [r for r in governance.list_versions(conn, tenant_id=tenant) if r["template_key"] == key]
        if not rows:
            raise UserError(f"no template {key}")
        version = version or max(r["version"] for r in rows)
        template, row = governance.load_version(conn, key, version, tenant_id=tenant)
        events = [e for e in governance.history(conn, key) if e["version"] == version]
    click.echo(f"{template.label}: {row['state']} (author {row['author']}, approved by {row['approved_by'] or '-'}, "
               f"hash {row['content_hash'][:16]})")
    click.echo(yaml.safe_dump(template.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
    click.echo("history:")
    for e in events:
        details = {k: v for k, v in e["details"].items() if k != "diff"}
        click.echo(f"  {e['at']:%Y-%m-%d %H:%M:%S}  {e['event']:<15} {e['actor']:<26} {details}")
        if e["details"].get("diff"):
            click.echo("    " + e["details"]["diff"].replace("\n", "\n    "))


@templates.command("diff", help="What changed between two versions.")
@click.argument("key")
@click.argument("v1", type=int)
@click.argument("v2", type=int)
@click.option("--tenant", default=None)
@user_errors
def templates_diff(key: str, v1: int, v2: int, tenant: str | None) -> None:
    from orchestration.governance import lifecycle as governance

    with warehouse.connection() as conn:
        governance.register_system_templates(conn)
        click.echo(governance.diff(conn, key, v1, v2, tenant_id=tenant) or "(no differences)")


@templates.command("submit", help="Submit a template file as a new version (Gate A runs).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "actor", required=True, help="the submitting principal")
@click.option("--tenant", default=None, help="submit as this tenant's custom template")
@user_errors
def templates_submit(file: str, actor: str, tenant: str | None) -> None:
    from pathlib import Path

    from orchestration.catalog import templates as catalog
    from orchestration.governance import lifecycle as governance

    template = catalog.load_file(Path(file), check_name=False)
    with warehouse.connection() as conn:
        governance.submit(conn, template, actor=actor, tenant_id=tenant)
    click.echo(f"{template.label} submitted by {actor}; Gate A passed; awaiting approval by another approver")


@templates.command("approve", help="Approve a draft (Gate A runs again; the approver must not be the author).")
@click.argument("key")
@click.argument("version", type=int)
@click.option("--as", "actor", required=True)
@user_errors
def templates_approve(key: str, version: int, actor: str) -> None:
    from orchestration.governance import lifecycle as governance

    with warehouse.connection() as conn:
        governance.register_system_templates(conn)
        governance.approve(conn, key, version, actor=actor)
    click.echo(f"{key} v{version} approved by {actor}")


@templates.command("deprecate", help="Deprecate an approved version: scheduled runs stop, manual runs warn.")
@click.argument("key")
@click.argument("version", type=int)
@click.option("--as", "actor", required=True)
@click.option("--reason", required=True)
@user_errors
def templates_deprecate(key: str, version: int, actor: str, reason: str) -> None:
    from orchestration.governance import lifecycle as governance

    with warehouse.connection() as conn:
        governance.deprecate(conn, key, version, actor=actor, reason=reason)
    click.echo(f"{key} v{version} deprecated by {actor}: {reason}")


@main.group(help="Principals (users and service accounts), their roles and tenant memberships.")
def principals() -> None:
    pass


@principals.command("list")
@user_errors
def principals_list() -> None:
    from orchestration.access import policy

    with warehouse.connection() as conn:
        for p in policy.list_principals(conn):
            click.echo(f"{p.principal_id:<32} {p.kind:<8} {'active' if p.active else 'inactive':<8} "
                       f"roles={','.join(sorted(p.roles))} tenants={','.join(sorted(p.tenants))}")


@principals.command("add", help="Create or replace a principal's roles and memberships.")
@click.argument("principal_id")
@click.option("--role", "roles", multiple=True, required=True)
@click.option("--tenant", "tenants", multiple=True, required=True, help="tenant id, or * for all")
@click.option("--service", is_flag=True, help="a service account rather than a person")
@click.option("--as", "actor", required=True)
@user_errors
def principals_add(principal_id: str, roles, tenants, service: bool, actor: str) -> None:
    from orchestration.access import policy

    with warehouse.connection() as conn:
        policy.authorize_grant(conn, actor, principal_id, roles, tenants)
        policy.upsert_principal(conn, principal_id, kind="service" if service else "user",
                                roles=roles, tenants=tenants, actor=actor)
    click.echo(f"{principal_id}: roles {', '.join(roles)}; tenants {', '.join(tenants)}")


@main.group(help="The tamper-evident audit log.")
def audit() -> None:
    pass


@audit.command("verify", help="Check the hash chain; names the first broken row.")
@user_errors
def audit_verify() -> None:
    from orchestration.access import audit as audit_log

    with warehouse.connection() as conn:
        result = audit_log.verify(conn)
    if not result.ok:
        raise UserError(f"audit chain broken at row {result.first_broken_seq}: {result.problem}")
    click.echo(f"audit chain intact: {result.rows} rows")


@audit.command("tail", help="The newest audit rows.")
@click.option("-n", default=20, show_default=True)
@user_errors
def audit_tail(n: int) -> None:
    with warehouse.cursor() as cur:
        cur.execute("select seq, at, actor, tenant_id, action, target, outcome from control.audit_log order by seq desc limit %s", (n,))
        for row in reversed(cur.fetchall()):
            click.echo(f"{row[0]:>6} {row[1]:%Y-%m-%d %H:%M:%S} {row[2]:<28} {row[3] or '-':<10} {row[4]:<22} {row[6]:<9} {row[5]}")


@main.group(help="Runtime report schedules: a template for a tenant on a cron in a time zone, run by a sensor.")
def schedules() -> None:
    pass


@schedules.command("create", help="Schedule an approved template version for a tenant.")
@click.argument("template")
@click.option("--tenant", required=True)
@click.option("--cron", required=True, help='5-field cron expression, e.g. "0 6 * * 1"')
@click.option("--timezone", required=True, help="IANA time zone, e.g. Europe/Berlin")
@click.option("--version", type=int, default=None, help="template version [default: the newest approved]")
@click.option("--format", "formats", default=None, help="comma-separated formats [default: all the template offers]")
@click.option("--recipient", "recipients", multiple=True)
@click.option("--allow-overlap", is_flag=True, help="start a tick even while the previous run is active")
@click.option("--catch-up", type=click.Choice(["skip", "latest"]), default="skip", show_default=True)
@click.option("--as", "actor", required=True)
@click.option("--reason", required=True)
@user_errors
def schedules_create(template: str, tenant: str, cron: str, timezone: str, version: int | None, formats: str | None,
                     recipients, allow_overlap: bool, catch_up: str, actor: str, reason: str) -> None:
    from orchestration.schedules import runtime

    with warehouse.connection() as conn:
        schedule_id = runtime.create(
            conn, template, tenant_id=tenant, cron=cron, timezone=timezone, version=version,
            formats=[f.strip() for f in formats.split(",") if f.strip()] if formats else None,
            recipients=recipients, allow_overlap=allow_overlap, catch_up=catch_up, actor=actor, reason=reason)
        s = runtime.get(conn, schedule_id)
    click.echo(f"schedule {schedule_id}: {s['template_key']} v{s['template_version']} for {tenant} "
               f"at '{s['cron']}' {timezone}, formats {','.join(s['formats'])}; active")


@schedules.command("list", help="Schedules with their state and last tick.")
@click.option("--tenant", default=None)
@user_errors
def schedules_list(tenant: str | None) -> None:
    from orchestration.schedules import runtime

    with warehouse.connection() as conn:
        rows = runtime.list_schedules(conn, tenant_id=tenant)
    click.echo(f"{'id':>4}  {'template':<30} {'tenant':<10} {'cron':<16} {'time zone':<20} {'state':<8} {'catch-up':<8} last tick")
    for r in rows:
        last = f"{r['last_tick_at']:%Y-%m-%d %H:%M}Z" if r["last_tick_at"] else "-"
        click.echo(f"{r['schedule_id']:>4}  {r['template_key'] + ' v' + str(r['template_version']):<30} {r['tenant_id']:<10} "
                   f"{r['cron']:<16} {r['timezone']:<20} {r['state']:<8} {r['catch_up']:<8} {last}")


def _schedule_change(change: str, help_text: str):
    @schedules.command(change, help=help_text)
    @click.argument("schedule_id", type=int)
    @click.option("--as", "actor", required=True)
    @click.option("--reason", required=True)
    @user_errors
    def command(schedule_id: int, actor: str, reason: str) -> None:
        from orchestration.schedules import runtime

        with warehouse.connection() as conn:
            s = getattr(runtime, change)(conn, schedule_id, actor=actor, reason=reason)
        click.echo(f"schedule {schedule_id} {s['state']} by {actor}: {reason}")

    return command


schedules_pause = _schedule_change("pause", "Pause a schedule: its ticks do not run, and are not caught up on resume.")
schedules_resume = _schedule_change("resume", "Resume a paused schedule from now on.")
schedules_archive = _schedule_change("archive", "Archive a schedule for good: it never ticks again.")


@main.group(help="The metric dictionary (from the dbt manifest).")
def metrics() -> None:
    pass


@metrics.command("list", help="Every metric: id, model version, owner, formula, and the templates that use it.")
@user_errors
def metrics_list() -> None:
    from orchestration.metrics import dictionary as metric_docs

    for e in metric_docs.dictionary():
        version = f"v{e['model_version']}" if e["model_version"] is not None else "-"
        click.echo(f"{e['id']:<28} {e['model']} {version:<4} owner={e['owner']}  formula v{e['formula_version']}: {e['formula']}")
        click.echo(f"{'':<28} unit={e['unit']} grain={e['grain']} templates={', '.join(e['templates']) or '-'}")


@metrics.command("doc", help="Write docs/metric-dictionary.md (or, with --check, fail when it is stale).")
@click.option("--check", is_flag=True)
@user_errors
def metrics_doc(check: bool) -> None:
    from orchestration.metrics import dictionary as metric_docs

    text = metric_docs.render_markdown(metric_docs.dictionary())
    path = metric_docs.DOC_PATH
    if check:
        if not path.exists() or path.read_text() != text:
            raise UserError(f"{path} is stale: run `nexus-reports metrics doc` and commit it")
        click.echo(f"{path} is current")
        return
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    click.echo(f"wrote {path}")


# ---------------------------------------------------------------- runs


@main.command("run", help="Run a report now: one tenant, a period or --from/--to (inclusive), through Dagster's report_run job.")
@click.argument("template")
@click.option("--tenant", required=True)
@click.option("--period", default=None, help="a period of the template's cadence: YYYY-MM, or a week's Monday YYYY-MM-DD")
@click.option("--from", "date_from", default=None, help="ad-hoc window start YYYY-MM-DD (inclusive)")
@click.option("--to", "date_to", default=None, help="ad-hoc window end YYYY-MM-DD (inclusive)")
@click.option("--filter", "filters", multiple=True, help="name=value, for a filter the template declares")
@click.option("--format", "formats", default=None, help="comma-separated subset of the template's formats")
@click.option("--version", type=int, default=None, help="approved version [default: newest approved]")
@click.option("--as", "actor", required=True, help="the requesting principal")
@click.option("--wait", is_flag=True, help="follow the run to its end, with progress")
@user_errors
def run_cmd(template, tenant, period, date_from, date_to, filters, formats, version, actor, wait) -> None:
    from orchestration.runs import worker
    from orchestration.runs.failures import AlreadyActive, RunFailed
    from orchestration.services import runs as run_service

    pairs = dict(f.split("=", 1) if "=" in f else (f, None) for f in filters)
    submission = run_service.RunSubmission(
        template_key=template, version=version, tenant_id=tenant, requester=actor, period=period,
        date_from=date_from, date_to=date_to, filters=pairs,
        formats=tuple(f.strip() for f in formats.split(",")) if formats else (),
    )
    warehouse.ensure_database()
    with warehouse.connection() as conn:
        try:
            run_id = run_service.submit_and_spawn(conn, submission)
            record = run_records.get_run(conn, run_id)
            click.echo(f"run {run_id} queued: {record.template_key} v{record.template_version} for {tenant}, "
                       f"{record.window_start}..{record.window_end}")
        except AlreadyActive as exc:
            run_id = exc.run_id
            click.echo(f"the same request is already active as run {run_id}; following it" if wait
                       else f"the same request is already active as run {run_id}")
        except RunFailed as exc:
            raise UserError(f"run {exc.run_id} refused ({exc.failure_class}): {exc.diagnosis}") from exc
        if not wait:
            click.echo(f"follow it with: nexus-reports runs show {run_id}")
            return
        record = worker.follow(conn, run_id, click.echo)
    _print_end(record)


def _print_end(record) -> None:
    if record.state == "completed":
        click.echo(f"completed in {(record.ended_at - record.started_at).total_seconds():.1f}s: {record.artifact_location}")
        return
    raise UserError(f"run {record.run_id} {record.state} ({record.failure_class}): {record.diagnosis} "
                    f"[{record.retry_guidance}]")


@main.group(help="Report runs: list, show, cancel.")
def runs() -> None:
    pass


@runs.command("list", help="The newest runs.")
@click.option("--tenant", default=None)
@click.option("--state", default=None, type=click.Choice(["queued", "running", "completed", "failed", "cancelled", "expired"]))
@click.option("-n", "limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@user_errors
def runs_list(tenant, state, limit) -> None:
    from orchestration.services import runs as run_service

    with warehouse.connection() as conn:
        rows = run_service.list_runs(conn, tenant_id=tenant, state=state, limit=limit)
    for r in rows:
        window = r.period_key or f"{r.window_start}..{r.window_end}"
        extra = f" ({r.failure_class})" if r.failure_class else (" DEGRADED" if r.degraded else "")
        click.echo(f"{r.run_id}  {r.created_at:%Y-%m-%d %H:%M}  {r.template_key} v{r.template_version:<3} "
                   f"{r.tenant_id:<10} {window:<22} {r.trigger:<10} {r.state}{extra}"
                   + (f"  superseded by {r.superseded_by}" if r.superseded_by else ""))


@runs.command("show", help="One run: contract, state, stages, timings, files, and its chain of corrections and retries.")
@click.argument("run_id")
@user_errors
def runs_show(run_id) -> None:
    from orchestration.services import runs as run_service

    with warehouse.connection() as conn:
        view = run_service.show(conn, run_id)
    record = view.record
    duration = (record.ended_at - record.started_at).total_seconds() if record.ended_at and record.started_at else None
    lines = [
        ("run", f"{record.run_id} (Dagster run {record.dagster_run_id or '-'})"),
        ("template", f"{record.template_key} v{record.template_version}"),
        ("tenant", record.tenant_id),
        ("window", f"{record.window_start} .. {record.window_end} (end exclusive)"),
        ("requester", f"{record.requester} ({record.trigger}, attempt {record.attempt})"),
        ("state", f"{record.state} at stage {record.stage}" + (f", DEGRADED: {record.degraded_reason}" if record.degraded else "")),
        ("timing", f"created {record.created_at:%Y-%m-%d %H:%M:%S}, started {record.started_at or '-'}, "
                   f"ended {record.ended_at or '-'}" + (f", {duration:.1f}s" if duration is not None else "")),
    ]
    if record.tick_at and record.started_at:
        lag = (record.started_at - record.tick_at).total_seconds()
        lines.append(("schedule lag", f"tick to start {lag:.1f}s" + (
            f", start to published {(record.published_at - record.started_at).total_seconds():.1f}s" if record.published_at else "")))
    if record.failure_class:
        lines += [("failure", f"{record.failure_class}: {record.diagnosis}"), ("guidance", record.retry_guidance)]
    if record.artifact_location:
        lines.append(("files", record.artifact_location))
    for label, value in lines:
        click.echo(f"{label:<13} {value}")
    if len(view.chain) > 1:
        click.echo("chain:")
        for link in view.chain:
            how = ("supersedes " + link.supersedes_run_id) if link.supersedes_run_id else (
                f"retry of {link.retry_of}" if link.retry_of else "original")
            mark = "*" if link.run_id == run_id else " "
            click.echo(f" {mark} {link.run_id}  {link.trigger:<10} {link.state:<10} {how}"
                       + (f", superseded by {link.superseded_by}" if link.superseded_by else ""))


@runs.command("cancel", help="Cancel a queued or running run: nothing of it is published.")
@click.argument("run_id")
@click.option("--as", "actor", required=True)
@click.option("--wait", is_flag=True, help="wait until the run has ended")
@user_errors
def runs_cancel(run_id, actor, wait) -> None:
    from orchestration.runs import worker
    from orchestration.services import runs as run_service

    with warehouse.connection() as conn:
        record = run_service.cancel(conn, run_id, actor=actor)
        if wait and not record.ended:
            record = worker.follow(conn, run_id, lambda _: None, timeout=120)
    click.echo(f"run {run_id}: {record.state}" + (" (cancel requested)" if record.state == "running" else ""))


@runs.command("execute", hidden=True, help="Execute an admitted run (the worker `run` starts).")
@click.argument("run_id")
@user_errors
def runs_execute(run_id) -> None:
    import dagster as dg

    from orchestration.defs import dagster_home
    from orchestration.runs import records as run_records
    from orchestration.runs import run_tags

    dagster_home.prepare()
    with warehouse.connection() as conn:
        record = run_records.get_run(conn, run_id)
    if record is None:
        raise UserError(f"no run {run_id}")
    config = run_records.run_config_of(record, run_id=run_id)
    from orchestration.definitions import defs

    result = defs.resolve_job_def("report_run").execute_in_process(
        run_config={"ops": {"execute_report_run": {"config": config}},
                    "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        instance=dg.DagsterInstance.get(),
        tags={run_tags.REQUESTER: record.requester, run_tags.TRIGGER: record.trigger, run_tags.REPORT_RUN: run_id},
        raise_on_error=False,
    )
    sys.exit(0 if result.success else 1)


@main.group(help="Benchmarks that print numbers (throughput, wall time, peak memory).")
def bench() -> None:
    pass


@bench.command("exports", help="Each format on a snapshot of N rows, against raw COPY and bare xlsxwriter.")
@click.option("--rows", default=100_000, show_default=True, type=click.IntRange(1, 20_000_000))
@user_errors
def bench_exports(rows: int) -> None:
    from orchestration.dev import bench as benchmark

    warehouse.ensure_database()
    with warehouse.connection() as conn:
        benchmark.run(conn, rows, echo=click.echo)


# ---------------------------------------------------------------- links


@main.group(help="Download links: one principal, one file of a run, expiring; revocable by link, run, template or tenant.")
def links() -> None:
    pass


@links.command("create", help="Create a link to one file of a completed run for one principal; prints its URL once.")
@click.argument("run_id")
@click.option("--format", "fmt", required=True, type=click.Choice(formats.NAMES))
@click.option("--for", "principal_id", required=True, help="the principal who may download it")
@click.option("--variant", default="internal", show_default=True)
@click.option("--expires-in", default=None, help="e.g. 30m, 2h, 7d [default: the longest the template's sensitivity allows]")
@click.option("--as", "actor", required=True)
@user_errors
def links_create(run_id, fmt, principal_id, variant, expires_in, actor) -> None:
    from orchestration.links import service as link_service

    duration = link_service.parse_duration(expires_in) if expires_in else None
    with warehouse.connection() as conn:
        link = link_service.create(conn, run_id, fmt=fmt, principal_id=principal_id, actor=actor,
                                   variant=variant, expires_in=duration)
    click.echo(f"link {link.link_id} for {link.principal_id}, expires {link.expires_at:%Y-%m-%d %H:%M:%S}Z:")
    click.echo(link.url())


@links.command("list", help="Links with their status (active, expired, revoked); never their tokens.")
@click.option("--tenant", default=None)
@click.option("--run", "run_id", default=None)
@user_errors
def links_list(tenant, run_id) -> None:
    from orchestration.links import service as link_service

    with warehouse.connection() as conn:
        rows = link_service.list_links(conn, tenant_id=tenant, run_id=run_id)
    click.echo(f"{'id':>5}  {'run':<34} {'template':<28} {'fmt':<4} {'tenant':<10} {'for':<26} {'expires':<17} {'dl':>3} status")
    for r in rows:
        extra = f" by {r['revoked_by']}: {r['revoke_reason']}" if r["revoked_at"] else ""
        click.echo(f"{r['link_id']:>5}  {r['run_id']:<34} {r['template_key']:<28} {r['format']:<4} {r['tenant_id']:<10} "
                   f"{r['principal_id']:<26} {r['expires_at']:%Y-%m-%d %H:%M}Z {r['downloads']:>3} {r['status']}{extra}")


@links.command("revoke", help="Revoke one link, every link of a run, of a template (optionally of one tenant), or of a tenant.")
@click.option("--link", "link_id", type=int, default=None)
@click.option("--run", "run_id", default=None)
@click.option("--template", "template_key", default=None)
@click.option("--tenant", "tenant_id", default=None, help="every link of this tenant (with --template: that template's)")
@click.option("--as", "actor", required=True)
@click.option("--reason", required=True)
@user_errors
def links_revoke(link_id, run_id, template_key, tenant_id, actor, reason) -> None:
    from orchestration.links import service as link_service

    with warehouse.connection() as conn:
        revoked = link_service.revoke(conn, actor=actor, reason=reason, link_id=link_id, run_id=run_id,
                                      template_key=template_key, tenant_id=tenant_id)
    click.echo(f"revoked {len(revoked)} link(s)" + (f": {', '.join(map(str, revoked))}" if revoked else ""))


# ---------------------------------------------------------------- delivery


@main.group(help="Report delivery: distribution approvals (Gate C), e-mail allow-lists, outbox status and retries.")
def delivery() -> None:
    pass


def _split(values) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@delivery.command("approve", help="Approve a schedule's distribution: exactly these recipients over these channels. "
                  "Adding a recipient or a channel later voids the approval.")
@click.argument("schedule_id", type=int)
@click.option("--as", "actor", required=True, help="the approver (approver role, not the schedule's owner)")
@click.option("--recipients", "recipients", multiple=True, required=True,
              help="kind:address[;external][;principal=ID], comma-separated or repeated")
@click.option("--channels", "channels", multiple=True, required=True, help="email, webhook, bucket (comma-separated)")
@user_errors
def delivery_approve(schedule_id, actor, recipients, channels) -> None:
    from orchestration import delivery as d

    with warehouse.connection() as conn:
        approval_id = d.approve(conn, schedule_id, approver=actor, recipients=_split(recipients), channels=_split(channels))
    click.echo(f"approval {approval_id} recorded for schedule {schedule_id}")


@delivery.command("allow-domain", help="Allow a tenant's reports to be e-mailed to addresses in DOMAIN.")
@click.argument("tenant")
@click.argument("domain")
@click.option("--as", "actor", required=True)
@user_errors
def delivery_allow_domain(tenant, domain, actor) -> None:
    from orchestration import delivery as d

    with warehouse.connection() as conn:
        domain = d.allow_domain(conn, tenant, domain, actor=actor)
    click.echo(f"{tenant}: e-mail to @{domain} allowed")


@delivery.command("add-webhook", help="Register (or rotate the secret of) a tenant's webhook endpoint; "
                  "prints the signing secret (Standard Webhooks, whsec_...) once.")
@click.argument("tenant")
@click.argument("url")
@click.option("--as", "actor", required=True)
@user_errors
def delivery_add_webhook(tenant, url, actor) -> None:
    from orchestration import delivery as d

    with warehouse.connection() as conn:
        secret = d.register_webhook(conn, tenant, url, actor=actor)
    click.echo(f"{tenant}: webhook {url} registered; signing secret (shown once): {secret}")


@delivery.command("status", help="Deliveries per channel and status, and each delivery (of one run with --run).")
@click.option("--run", "run_id", default=None)
@user_errors
def delivery_status(run_id) -> None:
    from orchestration import delivery as d

    with warehouse.connection() as conn:
        counts = d.channel_counts(conn, run_id)
        rows = d.list_deliveries(conn, run_id)
    if not rows:
        click.echo("no deliveries")
        return
    for channel, by_status in sorted(counts.items()):
        click.echo(f"{channel}: " + ", ".join(f"{s} {n}" for s, n in sorted(by_status.items())))
    for r in rows:
        line = f"  #{r['delivery_id']} run {r['run_id']} {r['channel']}:{r['address']} {r['status']} attempts {r['attempts']}"
        if r["status"] in ("failed_transient", "pending"):
            line += f" next {r['next_attempt_at']:%Y-%m-%d %H:%M:%S}"
        if r["last_error"]:
            line += f" ({r['last_error']})"
        click.echo(line)


@delivery.command("retry", help="Send failed deliveries again now (only those not sent; of one run with --run).")
@click.option("--run", "run_id", default=None)
@click.option("--as", "actor", default=None, help="who asks [default: the OS user]")
@user_errors
def delivery_retry(run_id, actor) -> None:
    import getpass

    from orchestration import delivery as d

    with warehouse.connection() as conn:
        attempts = d.retry(conn, run_id, actor=actor or f"os:{getpass.getuser()}")
    if not attempts:
        click.echo("nothing to retry")
    for a in attempts:
        click.echo(f"#{a['delivery_id']} {a['channel']}:{a['address']}: {a['status']}" + (f" ({a['error']})" if a["error"] else ""))


# ---------------------------------------------------------------- artifacts


@main.group(help="Published artifacts: the index (control.artifacts), retention dates and legal holds.")
def artifacts() -> None:
    pass


@artifacts.command("list", help="Indexed artifacts, newest first: store key, size, sensitivity, retention, hold.")
@click.option("--tenant", default=None)
@click.option("--run", "run_id", default=None)
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@user_errors
def artifacts_list(tenant: str | None, run_id: str | None, limit: int) -> None:
    from orchestration.artifacts import index as artifact_index

    with warehouse.connection() as conn:
        rows = artifact_index.list_artifacts(conn, tenant_id=tenant, run_id=run_id, limit=limit)
    if not rows:
        click.echo("no artifacts")
        return
    click.echo(f"{'run':<34} {'tenant':<10} {'template':<30} {'variant':<8} {'format':<6} {'bytes':>10} "
               f"{'sensitivity':<12} {'retain until':<12} {'state':<18} key")
    for r in rows:
        state = (f"deleted {r['deleted_at']:%Y-%m-%d}" if r["deleted_at"]
                 else "LEGAL HOLD" if r["legal_hold"] else "live")
        click.echo(f"{r['run_id']:<34} {r['tenant_id']:<10} {r['template_key'] + ' v' + str(r['template_version']):<30} "
                   f"{r['variant']:<8} {r['format']:<6} {r['bytes']:>10,} {r['sensitivity']:<12} "
                   f"{r['retention_until']:%Y-%m-%d}   {state:<18} {r['store']}:{r['storage_key']}")


def _hold_change(change: str, help_text: str):
    @artifacts.command(change, help=help_text)
    @click.argument("run_id")
    @click.option("--as", "actor", required=True)
    @click.option("--reason", required=True)
    @user_errors
    def command(run_id: str, actor: str, reason: str) -> None:
        from orchestration.artifacts import index as artifact_index

        with warehouse.connection() as conn:
            changed = artifact_index.set_hold(conn, run_id, hold=change == "hold", actor=actor, reason=reason)
        what = "on legal hold" if change == "hold" else "released from legal hold"
        click.echo(f"run {run_id}: {changed} artifacts {what} by {actor}: {reason}")

    return command


artifacts_hold = _hold_change("hold", "Place a legal hold on a run's artifacts: retention keeps them until released "
                                      "(platform admin, or the tenant admin of the run's tenant).")
artifacts_release = _hold_change("release", "Release a legal hold: the artifacts expire at their retention date again.")
