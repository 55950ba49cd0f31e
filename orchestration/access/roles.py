"""The roles a principal can hold. Access owns them: the policy matrix maps actions to them and
templates name them (who may run, who may receive), so the catalog reads them from here."""

from __future__ import annotations

from typing import Literal

RoleName = Literal[
    "viewer", "analyst", "manager", "executive", "template_owner", "approver", "tenant_admin", "platform_admin",
    "root", "auditor",
]
# root: the specification's ROOT requests; the only role that may include consent-withdrawn
# subjects in a report (with a reason code that is logged). Not a superset of platform_admin.
# auditor: follows a request through the audit log (audit trace) in its tenants.
ROLES: tuple[str, ...] = (
    "viewer", "analyst", "manager", "executive", "template_owner", "approver", "tenant_admin", "platform_admin",
    "root", "auditor",
)
