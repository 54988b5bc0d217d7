"""Fingerprinting one file and everything inside it: the unit of work a scan hands to a core."""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.errors import LimitExceeded, UnreadableItem
from vigil.fingerprint import downscale
from vigil.fingerprint.fingerprints import Fingerprints
from vigil.fingerprint.mediatype import WEAK_IMAGE_TYPES, is_image
from vigil.fingerprint.pdq import pdq_from_bytes
from vigil.limits import Limits
from vigil.scan.reader import RawItem, read_file
from vigil.scan.results import ScanError, ScannedItem


@dataclass
class FileResult:
    """The items of one file, and what went wrong reading it."""

    path: str
    items: list[ScannedItem] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)


def fingerprints_of(
    raw: RawItem, path: str, limits: Limits, errors: list[ScanError], fast_pdq: bool = False
) -> Fingerprints:
    """Fingerprints of one read item; a perceptual-hash failure is added to `errors`."""
    fp = Fingerprints(
        size=raw.size, md5=raw.md5, sha1=raw.sha1, sha256=raw.sha256, media_type=raw.media_type
    )
    if not is_image(raw.media_type):
        return fp
    if raw.content is None:
        fp.pdq_error = "max_image_file_size"
        errors.append(
            ScanError(
                path,
                raw.member,
                "max_image_file_size",
                f"image of {raw.size} bytes is over the max_image_file_size limit "
                f"({limits.max_image_file_size}); hashed, not decoded",
            )
        )
        return fp
    try:
        fp.pdq = pdq_from_bytes(raw.content, max_pixels=limits.max_image_pixels, fast=fast_pdq)
    except LimitExceeded as e:
        fp.pdq_error = e.limit
        errors.append(ScanError(path, raw.member, e.limit, str(e)))
    except UnreadableItem as e:
        if raw.media_type in WEAK_IMAGE_TYPES:
            fp.media_type = "application/octet-stream"
            return fp
        fp.pdq_error = e.reason
        errors.append(ScanError(path, raw.member, e.reason, str(e)))
    return fp


def prepare() -> None:
    """Make this process ready to fingerprint: call before forking workers, so they inherit it
    (the compiled PDQ kernels; otherwise every worker loads them on its first image)."""
    downscale.warm()


def fingerprint_file(path: str, limits: Limits, fast_pdq: bool = False) -> FileResult:
    """Read a file once and fingerprint it and every archive member in it."""
    result = FileResult(path)
    for raw in read_file(path, limits, is_image):
        if isinstance(raw, ScanError):
            result.errors.append(raw)
            continue
        result.items.append(
            ScannedItem(
                path, raw.member, fingerprints_of(raw, path, limits, result.errors, fast_pdq)
            )
        )
    return result
