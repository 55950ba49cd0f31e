"""The use cases, one function each, typed in and out; each owns its transaction.

The CLI (`cli/`), Dagster (`defs/`) and the API (`api/`) call these and nothing below them for
anything that changes state. Refusals are the errors of `orchestration.errors`.

Who commits (tests/test_architecture.py checks it):
- A service function owns the transaction: it opens (or is given) a connection, wraps its work
  in `with conn:`, and so commits once at the end or rolls everything back on an error.
- Domain code (every package but services/ and the adapters) takes the caller's connection and
  runs its statements inside the caller's transaction. It never writes `with conn:` and never
  calls `conn.commit()`.
- The exceptions, each for a reason that a rollback must not undo:
  - access/audit.py `record_now`: the audit row of a refusal survives the rollback of the
    refused work;
  - runs/records.py: a run's progress is visible to other processes (the CLI following a
    worker, a cancel, the reaper) while the run is still going;
  - delivery/records.py: the outbox claims a row (committed) before its channel is called and
    records the outcome right after; runs/launches.py does the same for the worker pool's queue;
  - the run engine's steps (runs/snapshot.py, publish.py, admission.py's security events) and
    exports/redaction.py's tenant key: see
    COMMITS_ON_ITS_OWN in tests/test_architecture.py, which names each with why.
"""
