"""Decode an image into the float luma plane PDQ hashes, whatever its format and colour mode.

Luma is 0.299 R + 0.587 G + 0.114 B computed in floating point from the RGB pixels, as Meta's
C++ reference does (Pillow's "L" mode rounds to integers and clips 16-bit data, so it is not used
for colour or deep images). Alpha is ignored: the reference hashes the RGB channels only.

EXIF orientation is deliberately not applied: the reference tools hash the stored pixels, and
hash lists are made with them; a rotated or flipped picture is found through the 8 dihedral
variants of its hash at match time.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

try:  # libjpeg-turbo straight into a NumPy array (a dependency; optional only for robustness)
    import simplejpeg
except ImportError:  # pragma: no cover - the Pillow path below decodes every JPEG as well
    simplejpeg = None

from vigil.errors import LimitExceeded, UnreadableItem

_LIMIT = "max_image_pixels"

# Signatures of formats Pillow reads here: data that starts like one of these and still cannot
# be opened is a damaged file, not an unknown format.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
# ISO-BMFF brands of HEIF/AVIF stills (read through pillow-heif).
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif")

_heif_lock = threading.Lock()
_heif_state: bool | None = None  # None: not tried yet; True: registered; False: unavailable


def _is_heif(data: bytes) -> bool:
    return len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def _ensure_heif() -> bool:
    """Register pillow-heif's opener once, on the first HEIF/AVIF seen; False if it is missing."""
    global _heif_state
    with _heif_lock:
        if _heif_state is None:
            try:
                import pillow_heif

                pillow_heif.register_heif_opener()
                _heif_state = True
            except Exception:  # missing, or a broken native library: the format just fails
                _heif_state = False
        return _heif_state


def _known_format(data: bytes) -> str | None:
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if _is_heif(data):
        return "HEIF"
    return None


# Pillow's words when it knows a format but not this variant of it: an XPM with X11 colour names
# ("cannot read this XPM file"), a BMP compression or bit depth, a TIFF codec it was built without
# ("decoder ... not available"), a layer layout it "cannot handle". A valid file Vigil cannot
# decode: hashed exactly, counted as undecoded, not called damaged.
_REFUSALS = ("cannot read this", "unsupported", "not supported", "not available", "cannot handle")


def _classify(exc: BaseException) -> str:
    """'truncated', 'unsupported' (a variant the decoder refuses) or 'corrupt' for an exception
    Pillow raised while opening or decoding."""
    text = str(exc).lower()
    if isinstance(exc, EOFError) or "truncated" in text or "end of file" in text:
        return "truncated"
    if any(words in text for words in _REFUSALS):
        return "unsupported"
    return "corrupt"


def _full_decode(image: Image.Image) -> Image.Image:
    """Decode every pixel at full size (the step a later reduced-size JPEG decode replaces)."""
    image.load()
    return image


# The decode step, kept swappable: it gets the opened (header-only) image, returns a loaded one.
DecodeStep = Callable[[Image.Image], Image.Image]

# Reduced-size JPEG decoding (opt-in: `--fast-pdq`): libjpeg's DCT scaling decodes at 1/2 size.
REDUCED_SCALE = 2
# Smallest side decoded at reduced size (smaller JPEGs are decoded in full).
_MIN_REDUCED_SIDE = 4 * 64 * REDUCED_SCALE // 2


def reduced_jpeg_decode(image: Image.Image) -> Image.Image:
    """A JPEG decoded at 1/REDUCED_SCALE size by libjpeg's DCT scaling; other formats in full.

    Only worth it for images large enough that PDQ's 64x64 summary is still well covered.
    """
    width, height = image.size
    if image.format == "JPEG" and min(width, height) >= _MIN_REDUCED_SIDE:
        image.draft("RGB", (width // REDUCED_SCALE, height // REDUCED_SCALE))
    image.load()
    return image


# Decoded pixels are written into one reused per-thread buffer up to this size (a fresh 8 MB
# array per photo costs its page faults every time); larger images get their own.
_SCRATCH_MAX = 64 * 1024 * 1024
_scratch_local = threading.local()


def _scratch(size: int) -> np.ndarray | None:
    """A reusable uint8 buffer of at least `size` bytes for this thread, or None if too large."""
    if size > _SCRATCH_MAX:
        return None
    buf: np.ndarray | None = getattr(_scratch_local, "buffer", None)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 4 * 1024 * 1024), dtype=np.uint8)
        _scratch_local.buffer = buf
    return buf


# JPEG colour spaces decoded by libjpeg itself to the same RGB (or grey) Pillow gets from it;
# CMYK and YCCK (Adobe's inverted CMYK among them) go through Pillow's own conversion.
_DIRECT_JPEG_SPACES = frozenset({"YCbCr", "RGB", "Gray"})


def decode_jpeg_pixels(
    data: bytes, *, max_pixels: int, reduce: int = 1
) -> tuple[np.ndarray, tuple[int, int]] | None:
    """8-bit pixels of a JPEG decoded by libjpeg-turbo into NumPy, or None to use Pillow.

    Returns (pixels, (rows, columns) of the full image): pixels, valid until this thread's next
    call (they live in a reused buffer), are HxWx4 RGBX (the 4th byte
    unused, so a pixel is one 32-bit word) for colour JPEGs, HxW for greyscale ones. The pixels
    are exactly those Pillow decodes (same library, same accurate integer IDCT, same fancy
    upsampling, same YCbCr->RGB conversion): the tests compare them. `reduce` = 2 decodes at
    half size by libjpeg's DCT scaling, as Pillow's `draft` does (the opt-in fast mode).

    None for anything unusual (not a JPEG, CMYK/YCCK, a damaged stream, a libjpeg warning): the
    Pillow path then decodes it and classifies any error exactly as before.
    """
    if simplejpeg is None or not data.startswith(b"\xff\xd8\xff"):
        return None
    try:
        height, width, colorspace, _subsampling = simplejpeg.decode_jpeg_header(data)
    except Exception:  # noqa: BLE001 - Pillow classifies a header it cannot read
        return None
    if colorspace not in _DIRECT_JPEG_SPACES or width <= 0 or height <= 0:
        return None
    if width * height > max_pixels:
        raise LimitExceeded(
            _LIMIT,
            f"image of {width}x{height} = {width * height} pixels exceeds "
            f"max_image_pixels={max_pixels}",
        )
    if reduce > 1 and min(width, height) < _MIN_REDUCED_SIDE:
        reduce = 1
    grey = colorspace == "Gray"
    expected = (-(-height // reduce), -(-width // reduce))
    out = _scratch(expected[0] * expected[1] * (1 if grey else 4))
    try:
        pixels = simplejpeg.decode_jpeg(
            data,
            colorspace="GRAY" if grey else "RGBX",
            fastdct=False,
            fastupsample=False,
            # The smallest libjpeg scale (M/8) that is at least this large: 1/reduce exactly.
            min_height=expected[0] if reduce > 1 else 0,
            min_width=expected[1] if reduce > 1 else 0,
            strict=True,  # a warning (damaged data) raises: Pillow decides what it is
            buffer=out,
        )
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001
        return None
    if grey and pixels.ndim == 3:
        pixels = pixels[..., 0]
    if pixels.shape[:2] != expected:  # not the scale asked for: let Pillow do it
        return None
    return pixels, (height, width)


def decode_luma(data: bytes, *, max_pixels: int, decode: DecodeStep = _full_decode) -> np.ndarray:
    """Luma (float32, HxW, 0..255) of the first frame of an encoded image."""
    return decode_luma_sized(data, max_pixels=max_pixels, decode=decode)[0]


def decode_luma_sized(
    data: bytes, *, max_pixels: int, decode: DecodeStep = _full_decode
) -> tuple[np.ndarray, tuple[int, int]]:
    """Luma as `decode_luma`, and the (rows, columns) of the full-size image it stands for."""
    if not data:
        raise UnreadableItem("truncated", "empty image data")
    if _is_heif(data) and not _ensure_heif():
        raise UnreadableItem("unsupported", "HEIF/AVIF image, but pillow-heif is not installed")
    # Warnings (decompression-bomb, corrupt EXIF, palette transparency) are noise here: every
    # problem that matters is raised as an exception and turned into a reason below.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise LimitExceeded(_LIMIT, f"image too large to decode: {exc}") from None
        except UnidentifiedImageError:
            known = _known_format(data)
            if known is None:
                raise UnreadableItem("unsupported", "not an image format Vigil reads") from None
            raise UnreadableItem("corrupt", f"damaged {known} header") from None
        except MemoryError:
            raise
        except Exception as exc:  # OSError, SyntaxError ...; Pillow's AVIF reader: RuntimeError
            raise UnreadableItem(_classify(exc), f"cannot open image: {exc}") from None
        with image:
            width, height = image.size
            # The header's size, checked before a single pixel is decoded.
            if width * height > max_pixels:
                raise LimitExceeded(
                    _LIMIT,
                    f"image of {width}x{height} = {width * height} pixels exceeds "
                    f"max_image_pixels={max_pixels}",
                )
            if width <= 0 or height <= 0:
                raise UnreadableItem("corrupt", f"image of {width}x{height} pixels")
            try:
                loaded = decode(image)
                luma = luma_from_image(loaded)
            except Image.DecompressionBombError as exc:
                raise LimitExceeded(_LIMIT, f"image too large to decode: {exc}") from None
            except MemoryError:
                raise
            except UnreadableItem:
                raise
            except Exception as exc:  # any decoder failure is a property of this item
                reason = _classify(exc)
                raise UnreadableItem(reason, f"cannot decode {image.format} image: {exc}") from None
    if luma.shape[0] * luma.shape[1] > max_pixels:
        raise LimitExceeded(_LIMIT, f"decoded image of {luma.shape} exceeds {max_pixels} pixels")
    return luma, (height, width)


def _palette_luma(image: Image.Image) -> np.ndarray:
    """Luma through the palette: one float per palette entry, indexed by the pixels."""
    palette = image.getpalette("RGB") or []
    rgb = np.zeros((256, 3), dtype=np.float64)
    entries = np.asarray(palette, dtype=np.float64).reshape(-1, 3)[:256]
    rgb[: len(entries)] = entries
    lut = ((rgb @ np.array([299.0, 587.0, 114.0])) / 1000.0).astype(np.float32)
    indices = np.asarray(image)
    if indices.ndim == 3:  # PA: index and alpha
        indices = indices[..., 0]
    return lut[indices]


def _scaled(values: np.ndarray, full_scale: float) -> np.ndarray:
    return (values.astype(np.float32) * np.float32(255.0 / full_scale)).astype(np.float32)


def _deep_luma(values: np.ndarray) -> np.ndarray:
    """32-bit integer or float grey to 0..255 without clipping.

    PDQ's bits ignore any positive scale and offset of the whole picture (no DC term, median
    threshold); only the quality metric depends on the range, so it is mapped to 0..255.
    """
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0.0 and hi <= 1.0 and values.dtype.kind == "f" and hi > 0.0:
        return (values * 255.0).astype(np.float32)  # float images in 0..1
    if lo >= 0.0 and hi <= 255.0:
        return values.astype(np.float32)  # 8-bit data widened (e.g. L converted to I or F)
    if lo >= 0.0 and hi <= 65535.0:
        return (values * (255.0 / 65535.0)).astype(np.float32)  # 16-bit data
    return ((values - lo) * (255.0 / (hi - lo))).astype(np.float32)


def luma_from_image(image: Image.Image) -> np.ndarray:
    """Luma (float32, HxW, 0..255) of a decoded Pillow image in any mode."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "RGBX"):
        # Pillow's RGB->F is exactly (299 R + 587 G + 114 B) / 1000 in float, alpha ignored.
        return np.asarray(image.convert("F"))
    if mode == "L":
        return np.asarray(image, dtype=np.float32)
    if mode in ("LA", "La"):
        return np.asarray(image)[..., 0].astype(np.float32)
    if mode == "1":
        return np.asarray(image).astype(np.float32) * np.float32(255.0)
    if mode in ("P", "PA"):
        return _palette_luma(image)
    if mode.startswith("I;16"):
        # Pillow's convert("L") would clip 16-bit values at 255; scale instead.
        return _scaled(np.asarray(image), 65535.0)
    if mode in ("I", "F"):
        return _deep_luma(np.asarray(image))
    if mode == "RGBa":
        return np.asarray(image.convert("RGBA").convert("F"))
    # CMYK (including Adobe's inverted JPEG CMYK), YCbCr, LAB, HSV and the rest: Pillow's own
    # conversion to RGB first, then the float luma of that.
    try:
        rgb = image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise UnreadableItem(
            "unsupported", f"image mode {mode} cannot be converted: {exc}"
        ) from None
    return np.asarray(rgb.convert("F"))
