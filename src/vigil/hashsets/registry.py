"""The hash-list formats: every format module's declarations (`LIST_FORMATS`), in one registry.

Adding a format is adding its module under vigil.hashsets.formats, declaring a `ListFormat` in
it, and naming the module below: the reader, detection, export and the CLI's `--format` choices
follow from the declaration. The order below is the public order of the names (`FORMATS`);
detection goes by each rule's priority, not by this order.
"""

from __future__ import annotations

import importlib

from vigil.hashsets.listformat import Detector, ListFormat

# The modules declaring formats, in the order their names are listed.
MODULES: tuple[str, ...] = (
    "vics",
    "ncmec",
    "csvlist",
    "sums",
    "pdqlist",
    "nsrl",
    "hashkeeper",
    "vpdqlist",
    "vpdqcsv",
)


def _collect(modules: tuple[str, ...]) -> tuple[ListFormat, ...]:
    found: list[ListFormat] = []
    for module in modules:
        declared = importlib.import_module(f"vigil.hashsets.formats.{module}").LIST_FORMATS
        found.extend(declared)
    return tuple(found)


def _index(formats: tuple[ListFormat, ...]) -> dict[str, ListFormat]:
    by_name: dict[str, ListFormat] = {}
    for fmt in formats:
        for name in (fmt.name, *fmt.aliases):
            if name in by_name or name == "auto":
                raise ValueError(f"hash-list format name {name!r} is taken")
            by_name[name] = fmt
    return by_name


def _detection_order(formats: tuple[ListFormat, ...]) -> tuple[tuple[Detector, ListFormat], ...]:
    # Rules of one priority claim disjoint files (`MD5` and `PDQ` type lines; md5sum, sha1sum
    # and sha256sum deciding together), so their order among themselves is moot; a stable
    # sort keeps it the registry's anyway.
    rules = [(rule, fmt) for fmt in formats for rule in fmt.detect]
    return tuple(sorted(rules, key=lambda pair: pair[0].priority))


LIST_FORMATS: tuple[ListFormat, ...] = _collect(MODULES)
_BY_NAME = _index(LIST_FORMATS)
# Every rule of every format, in the order detection tries them.
DETECTION: tuple[tuple[Detector, ListFormat], ...] = _detection_order(LIST_FORMATS)
# The public names, the names the CLI accepts (aliases included), and the formats written.
NAMES: tuple[str, ...] = tuple(fmt.name for fmt in LIST_FORMATS)
CHOICES: tuple[str, ...] = tuple(_BY_NAME)
EXPORT_NAMES: tuple[str, ...] = tuple(fmt.name for fmt in LIST_FORMATS if fmt.export is not None)


def get(name: str) -> ListFormat:
    """The format named `name` (or one of its aliases); KeyError for an unknown name."""
    return _BY_NAME[name]
