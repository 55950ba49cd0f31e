"""The Reporting API: bearer tokens (stored only as sha256) and the reportable entity registry.

Revision ID: 0011
"""
from alembic import op

revision = "0011"
down_revision = "0010"


# long: one DDL script, read top to bottom; splitting it would only scatter the schema
def upgrade() -> None:
    op.execute(
        """
        -- A token authenticates one principal until it expires or is revoked; its scopes can only
        -- narrow what the principal's roles allow. The token itself is never stored.
        create table control.api_tokens (
            token_id       text primary key check (token_id ~ '^tok_[0-9a-f]{16}$'),
            token_sha256   text not null unique check (token_sha256 ~ '^[0-9a-f]{64}$'),
            principal_id   text not null references control.principals,
            scopes         text[] not null default '{}',
            created_by     text not null,
            created_at     timestamptz not null,
            expires_at     timestamptz not null,
            last_used_at   timestamptz,
            revoked_at     timestamptz,
            revoked_by     text,
            check (expires_at > created_at),
            check ((revoked_at is null) = (revoked_by is null))
        );
        create index api_tokens_principal on control.api_tokens (principal_id);

        -- What the report builder may read: a dbt model, the fields it exposes (with their
        -- classification and masking), declared joins. tenant_id null: a system entry for all.
        create table control.registry_entities (
            entity_id      text primary key check (entity_id ~ '^ent_[0-9a-f]{16}$'),
            tenant_id      text,
            entity_name    text not null check (entity_name ~ '^[a-z][a-z0-9_]{0,62}$'),
            data_source    jsonb not null,
            allowed_fields jsonb not null,
            joins          jsonb not null default '[]',
            classification text not null,
            vertical_scope text[] not null default '{}',
            geo_scope      text[] not null default '{}',
            status         text not null default 'draft'
                           check (status in ('draft', 'active', 'deprecated', 'archived')),
            version        integer not null default 1 check (version >= 1),
            created_by     text not null,
            created_at     timestamptz not null,
            updated_at     timestamptz not null,
            activated_at   timestamptz,
            deprecated_at  timestamptz,
            archived_at    timestamptz,
            reason_code    text,
            reason_text    text
        );
        -- One live entry per name and owner (system or tenant); archived names can be reused.
        create unique index registry_entities_name on control.registry_entities
            (coalesce(tenant_id, ''), entity_name) where status <> 'archived';

        -- A saved report: a definition (data, never SQL) in versions. A change is a new version;
        -- runs use the active version, which a second person (an approver) activated.
        create table control.report_definitions (
            definition_id  text primary key check (definition_id ~ '^rdef_[0-9a-f]{16}$'),
            tenant_id      text not null,
            status         text not null default 'draft'
                           check (status in ('draft', 'active', 'deprecated', 'archived')),
            current_version integer not null default 1,
            active_version integer,
            created_by     text not null,
            created_at     timestamptz not null,
            updated_at     timestamptz not null,
            activated_at   timestamptz,
            deprecated_at  timestamptz,
            archived_at    timestamptz,
            reason_code    text,
            reason_text    text
        );
        create index report_definitions_tenant on control.report_definitions (tenant_id, definition_id);
        create table control.report_definition_versions (
            definition_id    text not null references control.report_definitions,
            version          integer not null check (version >= 1),
            spec             jsonb not null,
            validation_hash  text not null check (validation_hash ~ '^[0-9a-f]{64}$'),
            -- tenant, verticals and geo scopes the definition was saved under; every run is checked against it
            security_context jsonb not null,
            created_by       text not null,
            created_at       timestamptz not null,
            activated_by     text,
            activated_at     timestamptz,
            primary key (definition_id, version)
        );
        """
    )


def downgrade() -> None:
    op.execute("drop table control.report_definition_versions; drop table control.report_definitions;"
               " drop table control.registry_entities; drop table control.api_tokens;")
