"""Template versions through the real lifecycle, for tests that need a changed template."""

from __future__ import annotations

from orchestration.access import policy
from orchestration.catalog.templates import Template
from orchestration.services import templates as template_service


def approved_variant(conn, template: Template, version: int, **changes) -> Template:
    """Submit and approve a changed copy of the template as a new version (Gate A runs twice)."""
    variant = template.model_copy(update={"version": version, **changes})
    template_service.submit_template(conn, variant, actor=policy.PLATFORM_OWNER)
    template_service.approve(conn, variant.key, version, actor=policy.APPROVERS[1])
    return variant
