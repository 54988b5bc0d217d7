"""A rule measured and not kept: matching a faint image (PDQ quality 30-49) on its strong bits.

The strong bits of a hash are the STRONG of its 256 whose DCT coefficients lie furthest from
the median: those the noise of a faded, resized or re-compressed copy is least likely to flip.
The rule studied: a faint image matches an entry when at most WITHIN of its strong bits differ
from the entry's and at most PLAIN of all 256 (README, Robustness: it finds 99% of the
benchmark's low-quality copies, and it matches unrelated faint pictures, so it is not built).

From a dump of the robustness benchmark (`python -m benchmarks.bench_robustness --only low
--speed 0 --dump FILE`), it prints:
- for the low-quality copies (quality 30-49), how many the default gate finds (within 28 of
  their original) and the rule, and the strong-bit distances of the rest;
- for the unrelated tiles of quality 30-49, matched against every tile's plain hash (a list of
  real-photo hashes) of another group: the pairs within the rule, and how many strong bits
  apart the nearest pairs are.

    python -m benchmarks.study_strong_bits FILE
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterable, Iterator

import numpy as np

from vigil.fingerprint.downscale import downscale_pixels
from vigil.fingerprint.image import decode_jpeg_pixels
from vigil.fingerprint.pdq import _DCT, _DCT_T, _PERM, _SIGN, _quality

STRONG, WITHIN, PLAIN, GATE = 64, 4, 90, 28


def coefficients(data: bytes) -> tuple[int, np.ndarray, np.ndarray] | None:
    """(quality, bits, strong-bit mask) of a JPEG's 8 rotations, each (8, 256), bit k being
    coefficient k; None when it is not a JPEG the scanner decodes directly."""
    decoded = decode_jpeg_pixels(data, max_pixels=100_000_000)
    if decoded is None:
        return None
    block = downscale_pixels(*decoded)
    values = ((_DCT @ block) @ _DCT_T).ravel()[_PERM] * _SIGN
    median = np.partition(values, 127, axis=1)[:, 127:128]
    top = np.argpartition(-np.abs(values - median), STRONG - 1, axis=1)[:, :STRONG]
    mask = np.zeros(values.shape, dtype=bool)
    np.put_along_axis(mask, top, True, axis=1)
    return _quality(block), values > median, mask


def apart(bits: np.ndarray, mask: np.ndarray, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(strong bits apart, bits apart) of each rotation against each entry, (8, len(entries))."""
    differ = bits[:, None, :] != entries[None, :, :]
    return (differ & mask[:, None, :]).sum(2), differ.sum(2)


def faint(
    items: Iterable[tuple[str, int, bytes]],
) -> Iterator[tuple[str, int, np.ndarray, np.ndarray]]:
    """(key, target or tile number, bits, mask) of each item of quality 30-49."""
    for key, other, data in items:
        found = coefficients(data)
        if found is not None and 30 <= found[0] < 50:
            yield key, other, found[1], found[2]


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        dump = pickle.load(f)
    table = np.unpackbits(dump["table"][:, ::-1], axis=1, bitorder="little").astype(bool)
    gate = rule = total = 0
    missed: list[int] = []
    for _, target, bits, mask in faint(dump["copies"]):
        strong, full = apart(bits, mask, table[target : target + 1])
        total += 1
        if full.min() <= GATE:
            gate += 1
            rule += 1
            continue
        rule += bool(((strong <= WITHIN) & (full <= PLAIN)).any())
        missed.append(int(strong.min()))
    print(f"low-quality copies (quality 30-49): {total}; the gate (within {GATE}) finds {gate}")
    print(f"with the rule (<= {WITHIN} of {STRONG} strong bits, <= {PLAIN} of 256): {rule}")
    print(f"strong bits apart of those the gate misses: {sorted(missed)}")

    # Each tile decoded once: its plain hash is an entry, and a faint one is a query too.
    entries = np.zeros((len(dump["tiles"]), 256), dtype=bool)
    groups = np.array([g for g, _, _ in dump["tiles"]])
    queries: list[tuple[str, np.ndarray, np.ndarray]] = []
    for k, (group, _, data) in enumerate(dump["tiles"]):
        found = coefficients(data)
        if found is None:
            continue
        entries[k] = found[1][0]
        if 30 <= found[0] < 50:
            queries.append((group, found[1], found[2]))
    pairs = within = 0
    nearest: list[int] = []
    for group, bits, mask in queries:
        strong, full = apart(bits, mask, entries[groups != group])
        pairs += strong.size
        within += int(((strong <= WITHIN) & (full <= PLAIN)).sum())
        nearest.append(int(strong[full <= PLAIN].min()) if (full <= PLAIN).any() else STRONG)
    matched = sum(1 for n in nearest if n <= WITHIN)
    print(
        f"unrelated tiles of quality 30-49: {len(nearest)}, against the {len(entries):,} tiles' "
        f"hashes of other groups: {pairs:,} pairs, {within} within the rule; {matched} tiles "
        "would match a tile of another group"
    )
    print(f"nearest strong bits apart (within {PLAIN} in all), per tile: {sorted(nearest)[:20]}")


if __name__ == "__main__":
    main()
