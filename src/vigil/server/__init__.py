"""`vigil server`: agents enrol and report incidents; staff read and work them over the API.

A front over the engine (the catalog under the server's home is the engine's catalog); it
imports no other front. Storage in `models` (SQLAlchemy 2, Alembic history in `migrations`),
the work in `accounts`, `enrolment`, `incidents` and `audit`, the HTTP edge in `api`, the
commands in `cli`.
"""
