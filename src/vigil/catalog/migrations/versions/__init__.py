"""The catalog's revisions, oldest first: 0001 is schema 1 as Vigil made it before Alembic."""
