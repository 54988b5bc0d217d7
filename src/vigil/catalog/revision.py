"""Which schema revision this Vigil's catalog has (no SQLAlchemy: read before it is needed).

The schema's history is Alembic's (vigil/catalog/migrations, one revision per change), kept in a
version table of the catalog's own: the server's tables share its database and will have a
history of their own. Opening a catalog compares its revision with HEAD in one query and runs
Alembic only when they differ (vigil.catalog.migrate).
"""

VERSION_TABLE = "vigil_catalog_version"
# Every revision of vigil/catalog/migrations/versions, oldest first (a test keeps them in step):
# a catalog at any other is refused at once, without a lock or Alembic.
REVISIONS = ("0001", "0002", "0003", "0004")
HEAD = REVISIONS[-1]
# Revisions 0001-0003 are schema versions 1-3, which catalogs made before Alembic kept in
# state.schema_version: 2 added video_frames (vPDQ), 3 dropped the (kind, value) index on hashes.
# Revision 0004 (schema 4) added entries.digest and .added and the removed_entries table.
# Every revision still writes that number, so a Vigil of that time refuses a newer catalog with
# its own clear message instead of misreading it.
SCHEMA_VERSION = 4
