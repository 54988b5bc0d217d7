"""Matching fingerprints against compiled builds: exact lookups and PDQ radius search.

Import from the modules (`vigil.matching.matcher`, `.builds`, `.entries`): this package loads
nothing itself, so the catalog can use its light modules without NumPy's start-up.
"""
