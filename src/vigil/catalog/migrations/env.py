"""Alembic's environment for the catalog: the caller's connection, the catalog's version table."""

from __future__ import annotations

from alembic import context

from vigil.catalog import revision, schema

config = context.config
connection = config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError(
        "the catalog's migrations run on an open connection (vigil.catalog.migrate), "
        "not from the alembic command line"
    )

context.configure(
    connection=connection,
    target_metadata=schema.metadata,
    version_table=revision.VERSION_TABLE,
)
# The caller has begun the transaction (and taken the lock): this is a no-op inside it.
with context.begin_transaction():
    context.run_migrations()
