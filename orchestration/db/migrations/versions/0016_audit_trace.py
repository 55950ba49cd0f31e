"""Audit trace and the specification's edge cases: the auditor role, definitions marked invalid
by a registry or policy change (with the fields and the reason), the failed parts of a run and the sheets of an XLSX file.

Revision ID: 0014_audit_trace
"""
from alembic import op

revision = "0016"
down_revision = "0015"

_ROLES = ("'viewer', 'analyst', 'manager', 'executive', 'template_owner', 'approver', 'tenant_admin', "
          "'platform_admin', 'root'")


def upgrade() -> None:
    op.execute(
        f"""
        -- auditor: reads the audit trail of its tenants (audit trace), nothing else beyond view
        alter table control.principal_roles drop constraint principal_roles_role_check;
        alter table control.principal_roles add constraint principal_roles_role_check
            check (role in ({_ROLES}, 'auditor'));

        -- Set when a registry or policy change leaves the definition unable to run for its owner;
        -- cleared when a later change makes it valid again. Runs and schedules refuse it meanwhile.
        alter table control.report_definitions
            add column invalid_since  timestamptz,
            add column invalid_reason text,
            add column invalid_fields text[] not null default '{{}}';

        -- Every part (format, section) that failed to render, so a partial failure names them all.
        alter table control.report_runs add column failed_parts jsonb not null default '[]';
        -- The data sheets of an XLSX file (a large section continues on numbered sheets): run status shows them.
        alter table control.artifacts add column sheets text[];
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        alter table control.artifacts drop column sheets;
        alter table control.report_runs drop column failed_parts;
        alter table control.report_definitions
            drop column invalid_fields, drop column invalid_reason, drop column invalid_since;
        delete from control.principal_roles where role = 'auditor';
        alter table control.principal_roles drop constraint principal_roles_role_check;
        alter table control.principal_roles add constraint principal_roles_role_check check (role in ({_ROLES}));
        """
    )
