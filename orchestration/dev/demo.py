"""`nexus-reports demo`: the whole product once, through Dagster, on a persistent instance.

Seed -> dbt build (as Dagster assets) -> tenant partitions -> each template's job for every
tenant and the period -> a table of what was produced. Running it again replaces the sample
data with the same data and produces new runs with the same input hashes.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.access import policy, tenants
from orchestration.artifacts import which_store
from orchestration.artifacts.s3_store import S3Store
from orchestration.catalog import templates
from orchestration.db import warehouse
from orchestration.defs import dagster_home
from orchestration.dev import demo_output
from orchestration.metrics import dbt_manifest
from orchestration.runs import periods, records, run_tags
from orchestration.services import principals as principal_service
from orchestration.services import templates as template_service
from orchestration.settings import get_settings

# Dagster's step-by-step log stays in the instance (the UI shows it); the terminal gets warnings.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# dagster-dbt warns once per dbt test it records as an observation: that belongs with dbt's log, and
# a failed build is reported below with where to look.
QUIETER = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dataclass
class DemoResult:
    template: str
    tenant: str
    period: str
    ok: bool
    seconds: float
    state: str = ""
    rows: int = 0
    gate: str = ""
    files: list[str] = field(default_factory=list)
    location: str = ""
    diagnosis: str = ""
    run_id: str = ""


def run_demo(*, tenant_count: int = 3, incidents: int = 20_000, period: str | None = None,
             echo: Callable[[str], None] = print) -> list[DemoResult]:
    import dagster as dg

    if period:
        periods.month_window(period)  # validates the period before any work
    prepare(echo)
    seed_tenants(tenant_count, incidents, echo)
    dbt_manifest.parse()
    from orchestration.definitions import defs, report_jobs

    instance = dg.DagsterInstance.get()
    _build_models(defs, instance, echo)
    tenant_ids = govern(instance, echo)
    partitions = {key: _partitions(templates.load(key), tenant_ids) for key in report_jobs}
    total = sum(len(p) for p in partitions.values())
    echo(f"running {total} reports ({len(report_jobs)} templates x {len(tenant_ids)} tenants, "
         "platform-wide ones once) through Dagster:")
    results: list[DemoResult] = []
    for key, job in report_jobs.items():
        for result in _run_template(defs.resolve_job_def(job.name), templates.load(key), partitions[key], period,
                                    instance):
            results.append(result)
            echo(demo_output.progress_line(len(results), total, result))
    return results


def dbt_log_path() -> Path:
    """Where the demo keeps dbt's own log (it is long; the terminal gets one line about it)."""
    return get_settings().home / "logs" / "demo-dbt-build.log"


@contextlib.contextmanager
def _dbt_output_to(path: Path) -> Iterator[None]:
    """dagster-dbt re-emits every dbt event on stdout: into the log file instead, without colours."""
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("DBT_USE_COLORS")
    os.environ["DBT_USE_COLORS"] = "false"
    try:
        with path.open("w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            yield
    finally:
        if previous is None:
            os.environ.pop("DBT_USE_COLORS", None)
        else:
            os.environ["DBT_USE_COLORS"] = previous


def prepare(echo: Callable[[str], None]) -> None:
    """The warehouse, Dagster's home and the artifact store (its bucket created when missing)."""
    warehouse.ensure_database()
    home = dagster_home.prepare()
    where = "embedded PostgreSQL" if get_settings().embedded else "REPORTS_DATABASE_URL"
    echo(f"warehouse: {where}; DAGSTER_HOME={home}")
    store = which_store.get_store()
    if isinstance(store, S3Store) and store.ensure_bucket():
        echo(f"created bucket {store.bucket}")
    echo(f"artifact store: {store.describe()}")
    from orchestration.services import provenance

    key = provenance.ensure_key()
    echo(f"signing key {key.keyid} ({'created' if key.created else 'present'}; `nexus-reports provenance key` prints it)")


def seed_tenants(tenant_count: int, incidents: int, echo: Callable[[str], None]) -> None:
    from orchestration.dev import seed as seeding

    started = time.perf_counter()
    with warehouse.connection() as conn:
        counts = seeding.seed(conn, tenants=tenant_count, incidents=incidents)
    echo(f"seeded {counts.get('incidents', 0):,} incidents for {tenant_count} tenants in {time.perf_counter() - started:.1f}s")


def _build_models(defs, instance, echo: Callable[[str], None]) -> None:
    started = time.perf_counter()
    log = dbt_log_path()
    with _dbt_output_to(log):
        dbt_result = defs.resolve_job_def("dbt_build_job").execute_in_process(
            instance=instance, tags={run_tags.TRIGGER: "demo"}, raise_on_error=False, run_config=QUIETER
        )
    if not dbt_result.success:
        raise warehouse.WarehouseError(f"dbt build failed in Dagster: see {log}, or the run in the Dagster UI (make dev)")
    echo(f"dbt build (as Dagster assets) in {time.perf_counter() - started:.1f}s; dbt's log: {log}")


def govern(instance, echo: Callable[[str], None]) -> list[str]:
    """Sample principals, the system templates approved after Gate A, a partition per tenant."""
    with warehouse.connection() as conn:
        tenant_ids = tenants.list_tenant_ids(conn)
        principal_service.seed_sample_principals(conn, tenant_ids)
        approved = template_service.approve_system_templates(conn, approver=policy.APPROVERS[0])
    if approved:
        echo(f"approved by {policy.APPROVERS[0]} after Gate A: {', '.join(approved)}")
    add, _ = tenants.partition_changes(tenant_ids, instance.get_dynamic_partitions("tenants"))
    if add:
        instance.add_dynamic_partitions("tenants", add)
    return tenant_ids


def _partitions(template: templates.Template, tenant_ids: list[str]) -> list[str]:
    """A platform-wide template (reporting_kpis) runs once, for the platform partition."""
    return [tenants.PLATFORM] if template.scope == "platform" else tenant_ids


def _run_template(job_def, template: templates.Template, tenant_ids: list[str], period: str | None,
                  instance) -> Iterator[DemoResult]:
    """The template's job for every tenant, for the last complete period of its cadence (as its
    schedule would choose it) or the month asked for."""
    import dagster as dg

    latest = job_def.partitions_def.time_window_dimension.partitions_def.get_last_partition_key()
    period_key = f"{period}-01" if period and template.cadence == "monthly" else latest
    label = periods.period_window(template.cadence, period_key)[0]
    for tenant in tenant_ids:
        partition = dg.MultiPartitionKey({"tenant": tenant, "period": period_key})
        t0 = time.perf_counter()
        result = job_def.execute_in_process(
            instance=instance,
            partition_key=partition,
            tags={run_tags.TRIGGER: "manual", run_tags.REQUESTER: policy.DEMO},
            raise_on_error=False,
            run_config=QUIET,
        )
        yield _describe(template.key, tenant, label, result.run_id, time.perf_counter() - t0)


def _describe(template: str, tenant: str, period: str, dagster_run_id: str, seconds: float) -> DemoResult:
    with warehouse.connection() as conn:
        record = records.run_for_dagster_run(conn, dagster_run_id, template)
    if record is None:
        return DemoResult(template, tenant, period, False, seconds, diagnosis="no run record (see Dagster run)")
    files = []
    if record.artifact_location:
        store, key = which_store.for_location(record.artifact_location)
        files = store.files(key)
    gate = "passed" if record.gate_passed else ("failed" if record.gate_passed is False else "-")
    return DemoResult(
        template=template,
        tenant=tenant,
        period=period,
        ok=record.state == "completed",
        seconds=seconds,
        state=record.state,
        rows=sum(record.row_counts.values()),
        gate=gate,
        files=files,
        location=record.artifact_location or "",
        diagnosis=record.diagnosis or "",
        run_id=record.run_id,
    )


def print_table(results: list[DemoResult], echo: Callable[[str], None] = print) -> None:
    demo_output.print_table(results, echo)


def print_summary(results: list[DemoResult], echo: Callable[[str], None] = print) -> None:
    for line in demo_output.summary_lines(results, which_store.get_store().describe(), str(dbt_log_path())):
        echo(line)


def verify_runs(results: list[DemoResult], echo: Callable[[str], None] = print) -> bool:
    """`nexus-reports provenance verify` of one completed run per template, one line each: what an
    auditor would check (signature, manifest, files, approved template, publish event)."""
    from orchestration.services import provenance

    first = {}
    for r in results:
        if r.ok and r.run_id:
            first.setdefault(r.template, r)
    echo("")
    passed = True
    with warehouse.connection() as conn:
        for r in first.values():
            checks = list(provenance.verify_run(r.run_id, conn=conn))
            failed = [c for c in checks if not c.ok]
            outcome = failed[0].line if failed else f"ok, {len(checks)} checks passed"
            echo(f"provenance verify {r.run_id} ({r.template} for {r.tenant}): {outcome}")
            passed = passed and not failed
    return passed


def build_evidence(echo: Callable[[str], None] = print) -> Path:
    """The signoff evidence pack of this month (the demo's runs), as the platform admin; an
    incomplete pack (no `make test` results yet, say) is still built and says what it lacks."""
    import datetime as dt

    from orchestration.services import evidence

    with warehouse.connection() as conn:
        pack = evidence.build_pack(conn, evidence.PackRequest(
            actor=policy.PLATFORM_ADMIN, out=get_settings().home / "evidence" / "packs",
            period=dt.datetime.now(dt.UTC).strftime("%Y-%m")))
    lacking = [f"{i.document.item} {i.document.title} ({i.document.status})" for i in pack.items[:-1]
               if i.document.status != "ok"]
    echo("")
    echo(f"evidence pack: {pack.folder}" + (f" (incomplete: {'; '.join(lacking)})" if lacking else " (complete)"))
    return pack.folder
