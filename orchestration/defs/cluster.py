"""Which executor runs a Dagster run's steps, chosen by the deployment (REPORTS_EXECUTOR).

The same definitions serve a laptop and a cluster (docs/deployment.md); only the environment
differs. Unset or "in_process": the caller keeps its default (every step in the run's own
process). "multiprocess": one process per step on the run's host. "k8s": every step its own
Kubernetes Job (dagster-k8s, the `cluster` extra), which takes its image, namespace, config maps
and secrets from the instance's K8sRunLauncher (deploy/cluster/dagster.yaml).

A step hands nothing to the next one through Dagster's IO manager: snapshots live in Postgres
and artifacts in the artifact store, so steps may run on different pods.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

ENV = "REPORTS_EXECUTOR"
CHOICES = ("in_process", "multiprocess", "k8s")


class ExecutorSettingError(ValueError):
    """REPORTS_EXECUTOR names no executor we know, or one whose library is not installed."""


def executor_from_env(environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition | None:
    """The executor REPORTS_EXECUTOR selects, or None for "keep the caller's default"."""
    environ = os.environ if environ is None else environ
    choice = (environ.get(ENV) or "in_process").strip().lower()
    if choice == "in_process":
        return None
    if choice == "multiprocess":
        return dg.multiprocess_executor
    if choice == "k8s":
        try:  # imported only here: the kubernetes client is big and the single machine has no use for it
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:
            raise ExecutorSettingError(
                f"{ENV}=k8s needs dagster-k8s: install the cluster extra (pip install 'nexus-reports[cluster]')"
            ) from exc
        return k8s_job_executor
    raise ExecutorSettingError(f"{ENV}={environ.get(ENV)!r} is not an executor; use one of: {', '.join(CHOICES)}")
