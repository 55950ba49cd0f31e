from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        version_table="alembic_version",
        version_table_schema="control",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
