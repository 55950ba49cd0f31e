"""The Dagster run tags of a report run: names only, so domain code that builds run requests
(runtime schedules, corrections) and the Dagster adapter read and write the same ones."""

REQUESTER = "nexus/requester"  # the principal a launch is for; checked against control.principals
TRIGGER = "nexus/trigger"  # manual, schedule, correction, retry
SCHEDULE = "nexus/schedule_id"  # the runtime schedule that vouches for the tenant
TICK_AT = "nexus/tick_at"  # the schedule tick the run is for (its lag is start minus this)
FORMATS = "nexus/formats"  # comma-separated subset of the template's formats
REPORT_RUN = "nexus/report_run_id"  # a run the CLI admitted, executed by a worker
CORRELATION = "nexus/correlation_id"  # the X-Request-ID of the API request that submitted the run
SUPERSEDES = "nexus/supersedes"  # a correction's superseded run
REASON = "nexus/reason"  # why a sensor requested the run
TEMPLATE = "nexus/template"
TEMPLATE_VERSION = "nexus/template_version"
KIND = "nexus/kind"

# A launch without a requester tag (e.g. from the UI's partition view) is attributed to this
# principal, which is not in control.principals: it is refused before anything runs.
DEFAULT_REQUESTER = "dagster-ui"
