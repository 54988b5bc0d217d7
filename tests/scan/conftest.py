"""Test helpers for the scan tests: archive builders live beside the tests."""

from __future__ import annotations

import sys
from pathlib import Path

# pytest's default import mode no longer puts test folders on sys.path; the builders module is
# imported by name from the tests in this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))
