"""Chart definitions: versioned chart configurations over a saved report definition or an
approved query template, with the source version each chart version was validated against
(a source that has moved on since is drift: the chart does not render until re-validated).

Revision ID: 0014_h12charts
"""
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    op.execute(
        """
        create table control.chart_definitions (
            chart_id        text primary key check (chart_id ~ '^chart_[0-9a-f]{16}$'),
            tenant_id       text not null,
            status          text not null default 'draft'
                            check (status in ('draft', 'active', 'deprecated', 'archived')),
            current_version integer not null default 1,
            active_version  integer,
            created_by      text not null,
            created_at      timestamptz not null,
            updated_at      timestamptz not null,
            activated_at    timestamptz,
            deprecated_at   timestamptz,
            archived_at     timestamptz,
            reason_code     text,
            reason_text     text
        );
        create index chart_definitions_tenant on control.chart_definitions (tenant_id, chart_id);
        create table control.chart_definition_versions (
            chart_id        text not null references control.chart_definitions,
            version         integer not null check (version >= 1),
            spec            jsonb not null,
            -- the source as validated: a definition's version and validation hash, or a template's version
            source_kind     text not null check (source_kind in ('definition', 'template')),
            source_id       text not null,
            source_version  integer not null,
            source_hash     text,
            created_by      text not null,
            created_at      timestamptz not null,
            activated_by    text,
            activated_at    timestamptz,
            primary key (chart_id, version)
        );
        create index chart_versions_source on control.chart_definition_versions (source_kind, source_id);
        """
    )


def downgrade() -> None:
    op.execute("drop table control.chart_definition_versions; drop table control.chart_definitions;")
