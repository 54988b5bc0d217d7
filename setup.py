"""Build of the one compiled module; everything else is declared in pyproject.toml.

`vigil.fingerprint._digests` (MD5 + SHA-1 + SHA-256 in one interleaved pass) is optional: where
it cannot be compiled, or the CPU lacks the SHA extensions, `vigil.fingerprint.crypto` uses
hashlib and gives the same digests, slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "vigil.fingerprint._digests",
            ["src/vigil/fingerprint/_digests.c"],
            optional=True,
        )
    ]
)
