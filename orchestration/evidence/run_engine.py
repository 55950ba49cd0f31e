"""Item 3: the run engine architecture and retry policy, from the engine's own tables."""

from __future__ import annotations

import datetime as dt
import inspect

from orchestration.delivery import outbox
from orchestration.delivery import records as delivery_records
from orchestration.evidence.document import Document, code, generated_from, join, table
from orchestration.runs import engine, failures, run_record

TITLE = "Run engine architecture and retry policy"


def _seconds(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def document() -> Document:
    stage_default = {}
    for stage, failure_class in failures.STAGE_CLASS.items():
        stage_default.setdefault(failure_class, []).append(stage)
    classes = table(
        ["failure class", "retried automatically", "default for a failure in stage", "guidance"],
        [(code(c), "yes" if c in failures.TRANSIENT else "no", ", ".join(stage_default.get(c, [])) or "-",
          failures.GUIDANCE[c]) for c in failures.FAILURE_CLASSES])
    run_waits = [engine.BACKOFF_SECONDS * 2 ** (attempt - 1) for attempt in range(1, engine.MAX_ATTEMPTS)]
    run_retries = table(["rule", "value"], [
        ("attempts at most (the first run included)", engine.MAX_ATTEMPTS),
        ("wait before attempt 2, 3, ...", ", ".join(f"{w:g} s" for w in run_waits)),
        ("each attempt", "a new run record linked to the one it retries by `retry_of`"),
        ("retried classes", ", ".join(c for c in failures.FAILURE_CLASSES if c in failures.TRANSIENT)),
    ])
    delivery_waits = [delivery_records.backoff(n) for n in range(1, delivery_records.MAX_ATTEMPTS)]
    delivery_retries = table(["rule", "value"], [
        ("attempts at most per recipient and channel", delivery_records.MAX_ATTEMPTS),
        ("backoff", f"{_seconds(delivery_records.BACKOFF_BASE)} x 2^(attempt-1), at most "
                    f"{_seconds(delivery_records.BACKOFF_MAX)}"),
        ("waits after attempt 1, 2, ...", ", ".join(_seconds(w) for w in delivery_waits)),
        ("outbox statuses", ", ".join(delivery_records.STATUSES)),
    ])
    markdown = join(
        f"# {TITLE}",
        generated_from("runs/engine.py", "runs/run_record.py", "runs/failures.py", "delivery/records.py"),
        "## The run engine",
        inspect.cleandoc(engine.__doc__ or ""),
        table(["", "values"], [
            ("active states", ", ".join(run_record.ACTIVE_STATES)),
            ("end states", ", ".join(run_record.END_STATES)),
            ("stages, in order", " -> ".join(run_record.STAGES)),
        ]),
        "## Failure classes",
        inspect.cleandoc(failures.__doc__ or ""),
        classes,
        "## Retries of a run",
        inspect.cleandoc(engine.run_report.__doc__ or ""),
        run_retries,
        "## Retries of a delivery",
        inspect.cleandoc(outbox.__doc__ or ""),
        delivery_retries,
    )
    return Document(3, "run_engine_and_retry_policy", TITLE, markdown)
