"""Alembic environment: runs on the connection handed over by shared.migrate."""

from alembic import context

from shared.eventstore import metadata

# Replicas migrating at once wait for each other instead of racing on DDL.
MIGRATION_LOCK = 7_431_118_020


def run() -> None:
    connection = context.config.attributes["connection"]
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
        connection.commit()
    try:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if postgres:
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
            connection.commit()


run()
