"""Alembic environment: the server's tables only, versioned in `vigil_server_version`."""

from __future__ import annotations

from alembic import context

from vigil.server.models import Base
from vigil.server.storage import VERSION_TABLE

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the server's migrations through vigil.server.storage.upgrade")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    # Only our tables: the catalog's share the database and have their own history.
    include_name=lambda name, type_, parent: type_ != "table" or name in Base.metadata.tables,
)
with context.begin_transaction():
    context.run_migrations()
