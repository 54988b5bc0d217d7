"""Hypothesis strategies shared by the fuzz properties (tests/fuzz): mutations of seeds, and
hostile values for the structure-aware hash-list generators.

VIGIL_FUZZ_SCALE multiplies every property's number of examples (default 1: the CI budget).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from fuzz import mutate

SCALE = max(1, int(os.environ.get("VIGIL_FUZZ_SCALE", "1")))


def budget(examples: int) -> settings:
    """Settings for a fuzz property: `examples` (times VIGIL_FUZZ_SCALE), no deadline."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


mutation = st.tuples(
    st.sampled_from(mutate.KINDS),
    st.floats(0.0, 1.0, allow_nan=False),
    st.integers(0, 255),
    st.binary(min_size=1, max_size=16),
)


@st.composite
def mutated(draw: st.DrawFn, seeds: dict[str, bytes], max_mutations: int = 6) -> bytes:
    """A seed with a few mutations; splices take bytes from another seed."""
    names = sorted(seeds)
    data = seeds[draw(st.sampled_from(names))]
    other = seeds[draw(st.sampled_from(names))]
    mutations = draw(st.lists(mutation, min_size=1, max_size=max_mutations))
    return mutate.apply(data, mutations, other)


# Sizes that trip size arithmetic: zero, one, the 16-bit and 31-bit edges, a bomb's worth.
DIMENSIONS = st.sampled_from([0, 1, 2, 5, 63, 64, 255, 256, 4096, 30_000, 65_535, 2**31 - 1])
