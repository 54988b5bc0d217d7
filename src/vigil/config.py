"""Where Vigil keeps its state: `$VIGIL_HOME`, else the platform's user data directory."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def vigil_home(override: str | os.PathLike[str] | None = None) -> Path:
    """The state directory (created if missing)."""
    raw = override or os.environ.get("VIGIL_HOME") or platformdirs.user_data_dir("vigil")
    home = Path(raw).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home
