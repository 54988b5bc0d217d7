"""NCMEC hash sharing XML (v2 API): `<image>` / `<video>` entries, `<deleted...>` withdrawals.

Read with iterparse, each entry element dropped from the tree once read, so memory stays flat
however long the file. Tags are compared without their namespace.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any, BinaryIO

from vigil.errors import HashListError
from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.formats import clean_hash
from vigil.hashsets.listformat import Detector, ListFormat, Sample, plain
from vigil.kinds import SINGLE

ENTRY_TAGS = frozenset({"image", "video"})
DELETED_TAGS = frozenset({"deletedImage", "deletedVideo"})
# Fingerprints that become matchable hashes; the rest (pdna = PhotoDNA) stay in meta.
FINGERPRINT_KINDS = {k.name: k.name for k in SINGLE}


def local(tag: str) -> str:
    """A tag without its `{namespace}`."""
    return tag.rsplit("}", 1)[-1] if tag[:1] == "{" else tag


def parse(stream: BinaryIO, report: ParseReport) -> Iterator[Entry]:
    """Entries of an NCMEC XML document; withdrawn ids go to report.deleted_ids."""
    stack: list[ET.Element] = []
    record = 0
    try:
        for event, element in ET.iterparse(stream, events=("start", "end")):
            if event == "start":
                stack.append(element)
                continue
            stack.pop()
            tag = local(element.tag)
            if tag in ENTRY_TAGS or tag in DELETED_TAGS:
                if tag in ENTRY_TAGS:
                    record += 1
                    entry = _entry(element, tag, record, report)
                    if entry is not None:
                        yield entry
                else:
                    withdrawn = _child_text(element, "id")
                    if withdrawn:
                        report.deleted_ids.append(withdrawn)
                # Drop the element from its parent so the tree never grows.
                element.clear()
                if stack:
                    stack[-1].remove(element)
            elif len(stack) == 1 and tag not in ENTRY_TAGS:
                # A container such as <images count=".." maxTimestamp="..">.
                _note_container(element, report.info)
                element.clear()
                stack[-1].remove(element)
    except ET.ParseError as exc:
        raise HashListError(f"invalid or truncated NCMEC XML: {exc}") from exc
    except (LookupError, ValueError) as exc:
        # The XML declaration names an encoding Python does not know (LookupError) or one expat
        # cannot read ("multi-byte encodings are not supported", ValueError: UTF-7, Shift JIS).
        raise HashListError(f"NCMEC XML in an encoding that cannot be read: {exc}") from exc


def _entry(element: ET.Element, tag: str, record: int, report: ParseReport) -> Entry | None:
    entry_id = _child_text(element, "id")
    where = f"record {record}" if entry_id is None else f"record {record} (id {entry_id})"
    hashes: dict[str, str] = {}
    errors: list[str] = []
    meta: dict[str, Any] = {"media": tag}
    for child in element:
        name = local(child.tag)
        if name == "fingerprints":
            for print_ in child:
                kind_name = local(print_.tag)
                value = (print_.text or "").strip()
                if not value:
                    continue
                kind = FINGERPRINT_KINDS.get(kind_name.lower())
                if kind is None:
                    meta[kind_name] = value
                    continue
                try:
                    hashes[kind] = clean_hash(value, kind)
                except ValueError as exc:
                    errors.append(str(exc))
        elif name == "member":
            meta["member"] = (child.text or "").strip()
            if child.get("id"):
                meta["member_id"] = child.get("id")
        elif name not in ("id", "classification") and len(child) == 0 and child.text:
            meta[name] = child.text.strip()
    if not hashes:
        reason = "; ".join(errors) if errors else "no md5, sha1 or pdq fingerprint"
        report.problem(None, f"{where}: skipped, {reason}", record=record)
        return None
    if errors:
        report.problem(None, f"{where}: {'; '.join(errors)} (other hashes kept)", record=record)
    return Entry(
        hashes=hashes,
        id=entry_id,
        category=_child_text(element, "classification"),
        meta=meta,
    )


def _note_container(element: ET.Element, info: dict[str, Any]) -> None:
    stamp = element.get("maxTimestamp")
    if stamp and stamp > info.get("maxTimestamp", ""):
        info["maxTimestamp"] = stamp
        # The catalog labels the imported set's version with this.
        info["version_hint"] = stamp
    count = element.get("count")
    if count is not None:
        info.setdefault("counts", {})[local(element.tag)] = count


def _child_text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if local(child.tag) == name:
            text = (child.text or "").strip()
            return text or None
    return None


# -- declaration ---------------------------------------------------------------------------------

_NCMEC_MARK = re.compile(
    rb"hashsharing\.ncmec\.org|<(?:\w+:)?(?:queryResult|image|video|deletedImage|deletedVideo)[\s>]"
)


def claims(sample: Sample) -> bool:
    """Every XML document is NCMEC's to read; one without an NCMEC mark is refused here."""
    if sample.start != b"<":
        return False
    if _NCMEC_MARK.search(sample.head) is None:
        raise HashListError(f"{sample.name}: XML, but not an NCMEC hash-sharing list")
    return True


def _example(*images: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<queryResult xmlns="https://hashsharing.ncmec.org/HashSharing/v2"><images>'
        + "".join(images)
        + "</images></queryResult>\n"
    )


_IMAGES = (
    "<image><id>image1</id><classification>A1</classification><fingerprints>"
    "<md5>2c1743a391305fbf367df8e4f069f9f9</md5></fingerprints></image>",
    "<image><id>image2</id><classification>B1</classification><fingerprints>"
    "<sha1>962665711e0e6ff33104712f82068162cdb1f9c0</sha1></fingerprints></image>",
)

LIST_FORMATS = (
    ListFormat(
        name="ncmec",
        parse=plain(parse),
        detect=(Detector(200, claims),),
        example=_example(*_IMAGES),
        malformed_example=_example(
            *_IMAGES, "<image><id>image3</id><fingerprints><md5>xyz</md5></fingerprints></image>"
        ),
        categories=True,
    ),
)
