"""The catalog: imported hash sets, stored durably, compiled into a matcher."""

from vigil.catalog.store import Catalog, HashSetInfo, ImportResult

__all__ = ["Catalog", "HashSetInfo", "ImportResult"]
