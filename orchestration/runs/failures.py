"""How runs end when they do not succeed: the nine failure classes, their guidance, and how an
exception is classified.

Every failure has a class, a one-line diagnosis and retry guidance. Transient classes are
retried automatically (each attempt its own run); the others need a person, and the guidance
says which one and what to do.
"""

from __future__ import annotations

import psycopg2

from orchestration.artifacts.store import StorageError
from orchestration.dev.faults import InjectedStorageFailure
from orchestration.errors import Conflict

FAILURE_CLASSES = (
    "query_failure",
    "source_unavailable",
    "validation_failed",
    "policy_violation",
    "format_error",
    "storage_failure",
    "delivery_failure",
    "timeout",
    "cancelled",
)
TRANSIENT = frozenset({"source_unavailable", "storage_failure", "delivery_failure"})
GUIDANCE = {
    "query_failure": "permanent: a section query failed; fix the template SQL or the dbt model, then rerun",
    "source_unavailable": "transient: retried automatically with backoff; if it persists, check the warehouse and the loaders",
    "validation_failed": "permanent until the data changes: read the Gate B results, fix the data, then run a correction",
    "policy_violation": "permanent: the request is not allowed (approval, role, tenant); change the request, do not retry",
    "format_error": "permanent: a renderer failed on this data; report it with the run id",
    "storage_failure": ("transient: retried automatically with backoff; "
                        "if it persists, check space and permissions of the artifact store"),
    "delivery_failure": "transient: retried automatically; check the channel's endpoint",
    "timeout": "permanent for this window size: narrow the window or raise the template's timeout_seconds",
    "cancelled": "cancelled on request: run it again if still wanted",
}
# The class a failure gets when nothing more specific is known: the stage it happened in.
STAGE_CLASS = {
    "queued": "policy_violation", "starting": "policy_violation", "freshness": "source_unavailable",
    "snapshot": "query_failure", "gate_b": "validation_failed", "render": "format_error", "publish": "storage_failure",
}


class RunFailed(RuntimeError):
    """A run ended as failed; the record holds the class and diagnosis."""

    def __init__(self, run_id: str, failure_class: str, diagnosis: str, *, retry: bool | None = None):
        super().__init__(f"run {run_id} failed ({failure_class}): {diagnosis}")
        self.run_id = run_id
        self.failure_class = failure_class
        self.diagnosis = diagnosis
        # None: as the class says (TRANSIENT); False: retrying now cannot help (stale source).
        self.retryable = failure_class in TRANSIENT if retry is None else retry


class AlreadyActive(Conflict):
    """The same request (input hash) is already queued or running: that run is the answer."""

    def __init__(self, run_id: str):
        super().__init__(f"the same request is already active as run {run_id}")
        self.run_id = run_id


class RunInterrupted(BaseException):
    """Raised into a running step from outside its flow (signal, checkpoint). Not an Exception,
    so that no `except Exception` in a library swallows it."""

    failure_class = "cancelled"


class RunCancelled(RunInterrupted):
    failure_class = "cancelled"


class RunTimedOut(RunInterrupted):
    failure_class = "timeout"


def is_connection_loss(exc: BaseException) -> bool:
    """The warehouse went away (terminated backend, network, restart): transient, whatever the stage."""
    if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        return not isinstance(exc, psycopg2.errors.QueryCanceled)
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and is_connection_loss(cause)


def classify(exc: BaseException, default: str) -> tuple[str, str]:
    """(failure class, one-line diagnosis) of an exception that ended a run."""
    first_line = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    if isinstance(exc, RunInterrupted):
        return exc.failure_class, str(exc)
    if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "DagsterExecutionInterruptedError":
        return "cancelled", "cancelled: the run was terminated (Dagster terminate or interrupt)"
    if isinstance(exc, psycopg2.errors.QueryCanceled):
        if "statement timeout" in str(exc):
            return "timeout", f"a query ran past the run's timeout: {text}"
        return "cancelled", f"a query was cancelled: {text}"
    if is_connection_loss(exc):
        return "source_unavailable", f"lost the warehouse connection: {text}"
    if isinstance(exc, (StorageError, InjectedStorageFailure)):
        return "storage_failure", text
    return default, text
