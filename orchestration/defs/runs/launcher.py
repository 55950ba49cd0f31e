"""Dagster's run launcher for this product: dequeued runs go to the warm worker pool.

The daemon's queue (defs/runs/coordinator.py, the limits and priorities in dagster.yaml) decides
when a run starts; this launcher decides where. Dagster's default launcher starts a new process
per run (imports of Dagster, dbt, Great Expectations and WeasyPrint: seconds before the first
query); a pool process (`nexus-reports workers`, defs/runs/pool.py) has all of that loaded and
executes the run at once. With no live pool worker the run is launched as Dagster's default
launcher does (its own process from the code server), so a deployment without a pool still runs.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher, LaunchRunContext

from orchestration.db import warehouse
from orchestration.runs import launches, records, worker

POOL_TAG = "nexus/pool"  # on a run handed to the pool (its engine event names the launch row)


def launch_priority(run: dg.DagsterRun) -> int:
    try:
        return int(run.tags.get("dagster/priority", "0"))
    except ValueError:
        return 0


class WarmPoolRunLauncher(DefaultRunLauncher):
    """Hands a launched run to the warm pool (a row in control.run_launches and a NOTIFY)."""

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        with warehouse.connection() as conn:
            if not launches.pool_state(conn).workers:
                return super().launch_run(context)
            # Tagged before a worker can see it: the worker's own writes to the run come after.
            self._instance.add_run_tags(run.run_id, {POOL_TAG: "warm"})
            launch_id = launches.enqueue(conn, "execute", dagster_run_id=run.run_id, priority=launch_priority(run))
        self._instance.report_engine_event(f"handed to the warm worker pool (launch {launch_id})", run,
                                           cls=self.__class__)

    def terminate(self, run_id: str) -> bool:
        """A pooled run: its report runs are flagged cancelled (their next checkpoint stops them) and
        the worker executing it gets SIGTERM, which cancels the run and leaves the worker alive."""
        run = self._instance.get_run_by_id(run_id)
        if run is None or POOL_TAG not in run.tags:
            return super().terminate(run_id)
        if run.is_finished:
            return False
        self._instance.report_run_canceling(run)
        with warehouse.connection() as conn:
            for report_run_id in records.active_runs_of_dagster_run(conn, run_id):
                if records.get_run(conn, report_run_id).cancel_requested:
                    continue  # `runs cancel` asked first and reached the worker itself
                record = records.request_cancel(conn, report_run_id)
                if record:
                    worker.signal_worker(record)
        return True
