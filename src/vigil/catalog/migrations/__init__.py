"""Alembic's scripts for the catalog's schema: env.py and one revision per schema version.

Driven from code (vigil.catalog.migrate), never from an alembic.ini: the catalog is opened by
every command, so the upgrade happens there, in one locked transaction.
"""
