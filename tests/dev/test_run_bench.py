"""`bench run` and `bench fanout` on the test warehouse: each prints its summary, and the numbers
it prints come from the runs' own records (published, tick, stage log)."""

from __future__ import annotations

import datetime as dt
import re

import dagster as dg

from orchestration.dev import run_bench
from orchestration.runs import records
from orchestration.services import runs as run_service
from tests.conftest import PERIOD, SEED_END, analyst

FANOUT_LINE = re.compile(r"fanout: (\d+) runs in ([\d.]+) s, ([\d.]+) runs/s, lag p95 ([\d.]+) s, peak RSS (\d+) MB")


def test_bench_run_times_a_cli_and_an_api_run_and_splits_them_by_stage(built, conn):
    lines: list[str] = []
    timed = run_bench.bench_run(template="sla_performance", tenant="acme", period=PERIOD, requester=analyst("acme"),
                                repetitions=1, api_day=SEED_END - dt.timedelta(days=1), echo=lines.append)
    assert lines[-1].startswith("run: 2 runs, median "), lines
    for path in ("cli", "api"):
        (run,) = timed[path]
        record = records.get_run(conn, run.run_id)
        assert record.state == "completed" == run.state and run_service.published_files(record)
        stages = dict(run.stages)
        # every stage the worker logged to Dagster's event log, in the order the run went through them
        assert [s for s in stages if s in dict(run_bench.STAGE_PREFIXES)] == ["freshness", "snapshot", "gate_b",
                                                                              "render", "publish"]
        # the parts add up to the wall time the bench measured (clocks of two processes: a little slack)
        assert abs(sum(stages.values()) - run.seconds) < 0.5, (stages, run.seconds)
    assert any(line.startswith("CLI (sla_performance for acme") for line in lines)
    assert any(line.strip().startswith("gate_b") for line in lines)


def test_bench_fanout_fires_the_month_end_tick_and_every_run_publishes(built, conn, tenant_ids):
    lines: list[str] = []
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", tenant_ids)
        result = run_bench.fanout(["sla_performance"], tick=dt.datetime.combine(SEED_END, dt.time(3), dt.UTC),
                                  only_tenants=["acme"], instance=instance, echo=lines.append)
        run_bench.print_fanout(result, lines.append)
    (run,) = result.runs
    record = records.get_run(conn, run.run_id)
    # the schedule chose the month before the tick, ran as the scheduler, kept the tick for its lag
    assert (record.state, record.tenant_id, record.period_key, record.trigger) == ("completed", "acme", PERIOD,
                                                                                   "schedule")
    assert run.lag == (record.published_at - record.tick_at).total_seconds() > 0
    runs, seconds, _, lag_p95, rss = FANOUT_LINE.fullmatch(lines[-1]).groups()
    assert int(runs) == 1 and float(seconds) >= run.seconds - 0.05 and abs(float(lag_p95) - run.lag) <= 0.05
    assert int(rss) > 0
    assert any(line.startswith("sla_performance ") and line.split()[1] == "1" for line in lines)
