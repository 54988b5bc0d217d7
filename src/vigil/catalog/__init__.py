"""The catalog: imported hash sets, stored durably, compiled into a matcher.

Its names are imported on first use: `vigil.catalog.listing` and `vigil.catalog.revision` must
stay importable without SQLAlchemy (see vigil.cli.main on start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vigil.catalog.listing import HashSetInfo
    from vigil.catalog.store import Catalog, ImportResult

__all__ = ["Catalog", "HashSetInfo", "ImportResult"]


def __getattr__(name: str) -> Any:
    if name in ("Catalog", "ImportResult"):
        from vigil.catalog import store

        return getattr(store, name)
    if name == "HashSetInfo":
        from vigil.catalog.listing import HashSetInfo

        return HashSetInfo
    raise AttributeError(f"module 'vigil.catalog' has no attribute {name!r}")
