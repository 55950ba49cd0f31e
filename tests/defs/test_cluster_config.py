"""The cluster deployment's configuration (deploy/cluster, docs/deployment.md), without a cluster.

The instance file loads as a real Dagster instance on the suite's Postgres (storage tables and
all); only the Kubernetes API is out of reach, so the launcher reads a throwaway kubeconfig
instead of the in-cluster one (it never connects while the instance is built). The definitions
load with REPORTS_EXECUTOR=k8s in a fresh interpreter, as a run pod would load them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
from dagster_k8s import K8sRunLauncher

from orchestration.defs import cluster
from orchestration.defs.runs.coordinator import NexusRunCoordinator
from orchestration.settings import REPO_ROOT

CLUSTER = REPO_ROOT / "deploy" / "cluster"
BUCKET = "nexus-cluster-test"


def cluster_file() -> dict:
    return yaml.safe_load((CLUSTER / "dagster.yaml").read_text())


def helm_values() -> dict:
    return yaml.safe_load((CLUSTER / "helm-values.yaml").read_text())


def kubeconfig(path: Path) -> Path:
    """A kubeconfig naming a cluster that does not exist: enough to build the launcher."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "nowhere",
        "clusters": [{"name": "nowhere", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "nobody", "user": {"token": "unused"}}],
        "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "nobody"}}],
    }))
    return path


@pytest.fixture(scope="module")
def instance(tmp_path_factory, fresh_warehouse):
    """deploy/cluster/dagster.yaml as this suite's instance: the two in-cluster keys switched to
    the throwaway kubeconfig, everything else as written."""
    from orchestration.db import warehouse

    home = tmp_path_factory.mktemp("cluster-dagster-home")
    config = cluster_file()
    config["run_launcher"]["config"].update(load_incluster_config=False,
                                            kubeconfig_file=str(kubeconfig(home / "kubeconfig")))
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NEXUS_DAGSTER_STORAGE_URL", warehouse.dagster_storage_url())
        env.setenv("REPORTS_S3_BUCKET", BUCKET)
        with dg.DagsterInstance.from_config(str(home)) as loaded:
            yield loaded


def test_runs_launch_as_kubernetes_jobs_with_the_image_namespace_and_environment_of_the_file(instance):
    written = cluster_file()["run_launcher"]["config"]
    launcher = instance.run_launcher
    assert isinstance(launcher, K8sRunLauncher)
    assert launcher.job_image == written["job_image"]
    assert launcher.job_namespace == written["job_namespace"] == "nexus-reports"
    assert launcher.service_account_name == written["service_account_name"]
    # REPORTS_DATABASE_URL, NEXUS_DAGSTER_STORAGE_URL and the S3 settings reach every run pod
    assert launcher.env_config_maps == ["nexus-reports-config"]
    assert launcher.env_secrets == ["nexus-reports-env"]
    assert [m["mount_path"] for m in launcher.volume_mounts] == ["/opt/nexus/home/signing"]


def test_the_storage_is_postgres_and_answers(instance):
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert instance.get_runs(limit=1) is not None  # the tables exist on the suite's server


def test_the_coordinator_checks_reports_and_keeps_slots_free_of_schedule_fanouts(instance):
    coordinator = instance.run_coordinator
    assert isinstance(coordinator, NexusRunCoordinator)
    queue = instance.get_concurrency_config().run_queue_config  # what the daemon dequeues with
    assert queue.max_concurrent_runs == 10
    limits = {(limit["key"], limit.get("value")): limit["limit"] for limit in queue.tag_concurrency_limits}
    assert limits == {("nexus/trigger", "schedule"): 6, ("nexus/trigger", "correction"): 2, ("dagster/backfill", None): 4}
    assert limits[("nexus/trigger", "schedule")] < queue.max_concurrent_runs


def test_step_logs_go_to_the_bucket_from_the_environment(instance):
    logs = instance.compute_log_manager
    assert isinstance(logs, S3ComputeLogManager)
    assert logs._s3_bucket == BUCKET  # noqa: SLF001 - the manager exposes no accessor


def test_the_helm_values_render_the_same_instance():
    """The chart renders its own dagster.yaml from the values: the parts we set must agree."""
    written, values = cluster_file(), helm_values()
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "CustomRunCoordinator"
    custom = coordinator["config"]["customRunCoordinator"]
    assert (custom["module"], custom["class"]) == (written["run_coordinator"]["module"], written["run_coordinator"]["class"])
    assert custom["config"] == written["run_coordinator"]["config"]
    launcher, k8s = written["run_launcher"]["config"], values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert k8s["jobNamespace"] == launcher["job_namespace"]
    assert [c["name"] for c in k8s["envConfigMaps"]] == launcher["env_config_maps"]
    assert [s["name"] for s in k8s["envSecrets"]] == launcher["env_secrets"]
    assert k8s["volumes"] == launcher["volumes"]
    assert [m["mountPath"] for m in k8s["volumeMounts"]] == [m["mount_path"] for m in launcher["volume_mounts"]]
    logs = values["computeLogManager"]["config"]["s3ComputeLogManager"]
    assert logs["bucket"] == written["compute_logs"]["config"]["bucket"] == {"env": "REPORTS_S3_BUCKET"}
    # the storage needs the psycopg2 driver named (SQLAlchemy 2.1 maps a bare scheme to psycopg 3)
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2" and not values["postgresql"]["enabled"]
    deployment, = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "orchestration.definitions"]
    image = f"{deployment['image']['repository']}:{deployment['image']['tag']}"
    assert image == launcher["job_image"]
    servers = {values[p]["image"]["repository"] for p in ("dagsterWebserver", "dagsterDaemon")}
    assert servers == {deployment["image"]["repository"]}  # our coordinator runs in both


# One fresh interpreter, as a run pod loads the code: the entry point with REPORTS_EXECUTOR=k8s,
# then again without the setting (a reload: the same interpreter, so it costs little).
LIST_EXECUTORS = """
import importlib, json, os
from dagster_k8s import k8s_job_executor
import orchestration.definitions as entry
def executors():
    jobs = entry.defs.get_repository_def().get_all_jobs()
    return {j.name: [j.executor_def.name, j.executor_def is k8s_job_executor] for j in jobs}
k8s = executors()
del os.environ["REPORTS_EXECUTOR"]
entry = importlib.reload(entry)
print(json.dumps({"k8s": k8s, "unset": executors()}))
"""


@pytest.fixture(scope="module")
def executors() -> dict:
    """Each job's executor (name, is dagster-k8s's k8s_job_executor) under each setting. Reads
    the dbt manifest `make test` writes first (the suite's manifest_path fixture would parse again)."""
    from orchestration.metrics import dbt_manifest

    if not dbt_manifest.MANIFEST_PATH.exists():
        dbt_manifest.parse()
    proc = subprocess.run([sys.executable, "-c", LIST_EXECUTORS], cwd=REPO_ROOT, env={**os.environ, cluster.ENV: "k8s"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_with_the_k8s_executor_every_job_runs_each_step_as_a_kubernetes_job(executors):
    jobs = executors["k8s"]
    assert {"report_run", "dbt_build_job", "retention_job", "incident_summary_job"} <= jobs.keys()
    assert {name: e for name, e in jobs.items() if e != ["k8s", True]} == {}


def test_without_the_setting_every_job_runs_in_process(executors):
    assert executors["unset"].keys() == executors["k8s"].keys()
    assert {name: e for name, e in executors["unset"].items() if e != ["in_process", False]} == {}


@pytest.mark.parametrize(("value", "expected"), [
    ("", None), ("in_process", None), (" In_Process ", None), ("multiprocess", "multiprocess"), ("K8S", "k8s"),
])
def test_the_setting_names_the_executor(value, expected):
    chosen = cluster.executor_from_env({cluster.ENV: value})
    assert (chosen.name if chosen else None) == expected


def test_an_unknown_executor_is_one_line_naming_the_choices():
    with pytest.raises(cluster.ExecutorSettingError) as raised:
        cluster.executor_from_env({cluster.ENV: "celery"})
    message = str(raised.value)
    assert message == "REPORTS_EXECUTOR='celery' is not an executor; use one of: in_process, multiprocess, k8s"
    assert "\n" not in message
