"""One mapping from the product's refusals to the command line: one line on stderr, exit code 1.

Click's own usage errors (a bad option value, a number out of range) exit 2. A bug stays a
traceback: only the families below are a user's mistake or a state the user can act on.
"""

from __future__ import annotations

import click

from orchestration.errors import ServiceError

EXIT_REFUSED = 1  # the request was understood and refused (NotFound, Denied, Invalid, Conflict, ...)
EXIT_USAGE = 2  # click: the command line itself is wrong


class UserError(click.ClickException):
    """Shown as one line (`Error: ...`) without a traceback: the user can act on it."""

    exit_code = EXIT_REFUSED

    def __init__(self, message: str):
        # One line: a multi-line message from below would read as several errors.
        super().__init__(" ".join(str(message).split()) or "refused")


def refusals() -> tuple[type[BaseException], ...]:
    """The exception families that are refusals, not bugs (imported late: the domain modules
    pull in Dagster, dbt and the exporters, which `--help` does not need)."""
    from orchestration.artifacts.store import StorageError
    from orchestration.catalog.templates import TemplateError
    from orchestration.db.warehouse import WarehouseError
    from orchestration.governance.lifecycle import GovernanceError
    from orchestration.links.service import LinkError
    from orchestration.metrics.dbt_manifest import DbtError

    return (ServiceError, WarehouseError, DbtError, TemplateError, GovernanceError, LinkError, StorageError,
            PermissionError, ValueError)


def to_user_error(exc: BaseException) -> UserError:
    return UserError(str(exc) or type(exc).__name__)
