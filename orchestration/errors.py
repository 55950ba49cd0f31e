"""The four ways a use case refuses, shared by every layer and mapped once by each adapter.

Domain errors subclass one of these (a `TemplateError` is `Invalid`, an `AccessDenied` is
`Denied`), so the services raise them as they are and each adapter translates the family, not
each class: the CLI prints one line and exits 1, the API answers 404 / 403 / 422 / 409 as
problem+json, Dagster fails the step with the message and no stack trace.

The message is written for the person who made the request: what was refused and what to do.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal the requester can act on; never a bug (bugs stay ordinary exceptions)."""


class NotFound(ServiceError, LookupError):
    """The object does not exist, or the requester may not know that it does."""


class Denied(ServiceError, PermissionError):
    """The requester is known but may not do this (role, tenant, lifecycle, policy)."""


class Invalid(ServiceError, ValueError):
    """The request itself is malformed or breaks a rule of the domain."""


class Conflict(ServiceError):
    """The request collides with the current state (already active, stale version, duplicate)."""


class StaleVersion(Conflict):
    """An update named a version (If-Match) that is no longer the current one."""
