"""The server's Alembic history (version table `vigil_server_version`)."""
