"""Runtime schedules, by their old name: the store (schedules/store.py), the time rules
(schedules/timing.py) and the evaluation (schedules/evaluation.py).

Kept only for the CLI and delivery modules of other branches, which import `runtime.create`,
`runtime.get`, `runtime.list_schedules` and `runtime.ScheduleError`; new code imports the
module that holds the name. Remove when those branches land.
"""

from orchestration.schedules.evaluation import ACTIVE_RUN_STATUSES, ON_TIME, Evaluation, TickRecord, TickRequest, evaluate
from orchestration.schedules.store import (
    CATCH_UP,
    STATES,
    archive,
    create,
    get,
    list_schedules,
    pause,
    resume,
    tenant_of,
    ticks,
)
from orchestration.schedules.timing import ScheduleError, due_ticks, run_key, tick_iso, validate_cron, validate_timezone

__all__ = [
    "ACTIVE_RUN_STATUSES", "CATCH_UP", "ON_TIME", "STATES", "Evaluation", "ScheduleError", "TickRecord", "TickRequest",
    "archive", "create", "due_ticks", "evaluate", "get", "list_schedules", "pause", "resume", "run_key", "tenant_of",
    "tick_iso", "ticks", "validate_cron", "validate_timezone",
]
