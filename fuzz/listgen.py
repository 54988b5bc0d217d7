"""Structure-aware Hypothesis generators of hash lists: records that look right, with hostile
values in them (wrong widths, non-hex, huge fields, odd encodings, byte-order marks, CRLF,
NULs, deep JSON nesting, XML entities), then wrapped in the encodings and compressions lists
arrive in.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from typing import Any

from hypothesis import strategies as st

_HEX_DIGITS = "0123456789abcdefABCDEF"

# Field sizes around the csv module's field limit, Python's int-from-string digit limit and
# the 64 KiB detection reads.
HUGE_SIZES = st.sampled_from([4_301, 65_535, 65_537, 131_073])


def _hex(length: int) -> st.SearchStrategy[str]:
    return st.text(_HEX_DIGITS, min_size=length, max_size=length)


hex_value = st.one_of(
    st.sampled_from([32, 40, 64]).flatmap(_hex),
    st.integers(0, 130).flatmap(_hex),
    st.tuples(st.sampled_from([32, 40, 64]).flatmap(_hex), st.characters(), st.integers(0, 64)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
    ),
    HUGE_SIZES.map(lambda n: "a" * n),
    st.text(max_size=80),
    st.sampled_from(["", " ", "\x00", "0x" + "f" * 30, "-1", "null", "\ufeff" + "a" * 32]),
)

number_text = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["", "-0", "1e999", "nan", "inf", "-inf", "0x10", "1_000", "١٢", " 7 "]),
    HUGE_SIZES.map(lambda n: "9" * n),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

name_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["a.jpg", "dir/b c.png", "\\x\\n", "*star", "", "\t", "(paren)", "= x"]),
)

# Line ends as lists write them, and some they should not.
line_end = st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\x00\n", "\u2028", "\x0b"])


def joined(lines: list[str], ends: list[str]) -> str:
    """Lines joined with the given ends (cycled)."""
    if not lines:
        return ""
    return "".join(line + ends[i % len(ends)] for i, line in enumerate(lines))


@st.composite
def text_lines(
    draw: st.DrawFn, line: st.SearchStrategy[str], header: st.SearchStrategy[str]
) -> str:
    lines = draw(st.lists(st.one_of(line, st.sampled_from(["", "# comment", "  "])), max_size=12))
    if draw(st.booleans()):
        lines.insert(0, draw(header))
    return joined(lines, draw(st.lists(line_end, min_size=1, max_size=3)))


type_line = st.sampled_from(["MD5", "SHA-1", "sha1", "SHA256", "SHA-256", "PDQ", "md5 hash", "x"])

sum_line = st.one_of(
    st.tuples(hex_value, st.sampled_from(["  ", " *", "\t", " ", ""]), name_text).map("".join),
    st.tuples(hex_value, name_text).map(lambda t: f"\\{t[0]}  {t[1]}"),
    st.tuples(st.sampled_from(["MD5", "SHA1", "SHA-256", "SHA256"]), name_text, hex_value).map(
        lambda t: f"{t[0]} ({t[1]}) = {t[2]}"
    ),
    hex_value,
)
sums_text = text_lines(sum_line, type_line)

pdq_line = st.one_of(
    st.tuples(st.sampled_from(["pdq", "PDQ", "pdq,", "pdq\t"]), hex_value, name_text).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}"
    ),
    hex_value,
    st.tuples(hex_value, name_text).map(lambda t: f"{t[0]},{t[1]}"),
)
pdq_text = text_lines(pdq_line, st.sampled_from(["PDQ", "pdq", "signal_type,signal"]))

vpdq_line = st.one_of(
    st.tuples(number_text, number_text, hex_value, number_text).map(",".join),
    st.tuples(number_text, hex_value, number_text, number_text).map(",".join),
    st.tuples(st.integers(0, 10**6), st.integers(0, 200), _hex(64), st.floats(0, 1e6)).map(
        lambda t: f"{t[0]},{t[1]},{t[2]},{t[3]:.3f}"
    ),
)
vpdq_text = text_lines(vpdq_line, st.sampled_from(["frame,quality,pdq,timestamp", "# vpdq"]))

COLUMN_NAMES = [
    "md5",
    "MD5",
    "sha1",
    "SHA-1",
    "sha256",
    "SHA-256",
    "pdq",
    "pdq_hash",
    "hash",
    "id",
    "MediaID",
    "category",
    "Category",
    "classification",
    "note",
    "",
    "file_id",
    "hashset_id",
    "file_name",
    "directory",
    "video_id",
    "frame",
    "quality",
    "timestamp",
    '"SHA-1"',
    '"MD5"',
    "CRC32",
    "FileName",
    "FileSize",
    "ProductCode",
    "OpSystemCode",
    "SpecialCode",
]
NSRL_HEADER = (
    '"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode","SpecialCode"'
)
HASHKEEPER_HEADER = '"file_id","hashset_id","file_name","directory","hash","file_size"'
VPDQ_CSV_HEADER = "video_id,frame,quality,pdq,timestamp,category,md5"

cell = st.one_of(
    hex_value,
    number_text,
    name_text,
    st.sampled_from(['"', '""', '"a"b', "a\nb", '"x\ny"', ",", ";", "\t", "\r"]),
)


@st.composite
def csv_text(draw: st.DrawFn) -> str:
    """A header naming hash columns (or one of the fixed headers), then rows of hostile cells."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    fixed = draw(st.sampled_from([None, NSRL_HEADER, HASHKEEPER_HEADER, VPDQ_CSV_HEADER]))
    if fixed is not None:
        names = fixed.split(",")
        delimiter = ","
    else:
        names = draw(
            st.lists(st.one_of(st.sampled_from(COLUMN_NAMES), st.text(max_size=12)), max_size=8)
        )
    header = delimiter.join(names)
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        width = len(names) + draw(st.sampled_from([0, 0, 0, -1, 1, 5]))
        cells = draw(st.lists(cell, min_size=max(width, 0), max_size=max(width, 0)))
        if draw(st.booleans()):
            cells = ['"' + c.replace('"', '""') + '"' for c in cells]
        rows.append(delimiter.join(cells))
    if draw(st.booleans()):
        rows.insert(0, "")
    return joined([header, *rows], draw(st.lists(line_end, min_size=1, max_size=2)))


# -- VICS JSON -------------------------------------------------------------------------------

# A string that stands for a raw JSON token json.dumps cannot write (1e999, a bare NaN ...).
_RAW = "\x01RAW:"
raw_number = st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "1e-999", "9" * 5000, "-0"])

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    hex_value,
    raw_number.map(lambda t: _RAW + t),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)

frame_object = st.fixed_dictionaries(
    {},
    optional={
        "frame": json_value,
        "quality": st.one_of(st.integers(-5, 1000), json_value),
        "pdq": st.one_of(_hex(64), hex_value),
        "hash": hex_value,
        "timestamp": json_value,
    },
)
alternative_hash = st.fixed_dictionaries(
    {},
    optional={
        "HashName": st.one_of(
            st.sampled_from(["PDQ", "SHA256", "SHA-256", "vPDQ", "VideoPDQ", "PhotoDNA", "MD5"]),
            json_value,
        ),
        "HashValue": st.one_of(
            hex_value,
            vpdq_text,
            st.lists(st.one_of(frame_object, vpdq_line, json_value), max_size=4),
            json_value,
        ),
        "MD5": hex_value,
    },
)
media = st.fixed_dictionaries(
    {},
    optional={
        "MediaID": st.one_of(st.integers(-(2**70), 2**70), json_value),
        "Category": json_value,
        "MD5": st.one_of(hex_value, json_value),
        "SHA1": st.one_of(hex_value, json_value),
        "AlternativeHashes": st.one_of(st.lists(alternative_hash, max_size=3), json_value),
        "MediaFiles": st.one_of(st.lists(json_value, max_size=3), json_value),
        "IsPrecategorized": st.one_of(st.sampled_from(["true", "FALSE", " True "]), json_value),
        "MediaID@vigil.sourceId": json_value,
        "odata.id": json_value,
        "Exifs": json_value,
        "Comments": json_value,
    },
)
case = st.fixed_dictionaries(
    {},
    optional={
        "CaseID": json_value,
        "CaseNumber": json_value,
        "SourceApplicationName": json_value,
        "SourceApplicationVersion": json_value,
        "Media": st.one_of(st.lists(st.one_of(media, json_value), max_size=4), json_value),
    },
)
CONTEXTS = [
    "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media",
    "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/UK/$metadata#Cases",
    "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media",
    "DataModels/9.xml/#Media",
]


def _dumps(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    while _RAW in text:  # '"\x01RAW:1e999"' (escaped as \u0001 by json) -> 1e999
        start = text.index('"\\u0001RAW:')
        end = text.index('"', start + 1)
        text = text[:start] + text[start + len('"\\u0001RAW:') : end] + text[end + 1 :]
    return text


@st.composite
def vics_text(draw: st.DrawFn) -> str:
    """A VICS document: the flat Media shape, the Cases shape, a bare list, odd envelopes."""
    records = draw(st.lists(st.one_of(media, case, json_value), max_size=5))
    key = draw(st.sampled_from(["@odata.context", "odata.metadata", "x"]))
    shape = draw(st.sampled_from(["context-first", "value-first", "bare-list", "no-value"]))
    context = draw(st.one_of(st.sampled_from(CONTEXTS), json_value))
    if shape == "bare-list":
        document: Any = records
    elif shape == "no-value":
        document = {key: context, "MD5": draw(hex_value)}
    elif shape == "value-first":
        document = {"value": records, key: context}
    else:
        document = {key: context, "value": records}
    text = _dumps(document)
    cut = draw(st.sampled_from([None, None, None, 0.5, 0.9]))
    if cut is not None:
        text = text[: int(len(text) * cut)]
    return text


@st.composite
def deep_json(draw: st.DrawFn) -> str:
    """Nesting deeper than any recursive parser's stack, inside a VICS envelope or bare."""
    depth = draw(st.sampled_from([100, 1_000, 10_000, 100_000]))
    opener = draw(st.sampled_from(["[", '{"a":', '{"MD5":[']))
    closer = {"[": "]", '{"a":': "}", '{"MD5":[': "]}"}[opener]
    body = opener * depth + "1" + closer * depth * draw(st.sampled_from([0, 1]))
    where = draw(st.sampled_from(["media", "value", "bare", "context"]))
    if where == "media":
        return '{"@odata.context":"' + CONTEXTS[0] + '","value":[{"MD5":' + body + "}]}"
    if where == "value":
        return '{"odata.metadata":"x#Cases","value":' + body + "}"
    if where == "context":
        return '{"@odata.context":' + body + ',"value":[]}'
    return body


# -- NCMEC XML --------------------------------------------------------------------------------

xml_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@st.composite
def ncmec_entry(draw: st.DrawFn) -> str:
    tag = draw(st.sampled_from(["image", "video", "deletedImage", "deletedVideo", "other"]))
    prints = "".join(
        f"<{kind}>{_escape(draw(st.one_of(hex_value, xml_text)))}</{kind}>"
        for kind in draw(
            st.lists(st.sampled_from(["md5", "sha1", "pdq", "pdna", "sha256", "MD5"]), max_size=4)
        )
    )
    parts = [
        f"<id>{_escape(draw(xml_text))}</id>",
        f"<classification>{_escape(draw(xml_text))}</classification>",
        f'<member id="{_escape(draw(xml_text)).replace(chr(34), "")}">{_escape(draw(xml_text))}</member>',
        f"<fingerprints>{prints}</fingerprints>",
        "<timestamp>2026-01-01T00:00:00Z</timestamp>",
        "<nested><deeper>x</deeper></nested>",
        "&e;",
        "<![CDATA[<image>]]>",
    ]
    chosen = draw(st.lists(st.sampled_from(parts), max_size=6))
    return f"<{tag}>{''.join(chosen)}</{tag}>"


DOCTYPES = [
    "",
    '<!DOCTYPE q [<!ENTITY e "entity">]>',
    # A billion laughs, small and large: expat's amplification guard must stop the large one.
    '<!DOCTYPE q [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]>',
    '<!DOCTYPE q [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    '<!ENTITY f "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">'
    '<!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;"><!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">'
    '<!ENTITY e "&i;&i;&i;&i;&i;&i;&i;&i;&i;&i;">]>',
    '<!DOCTYPE q [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE q SYSTEM "http://127.0.0.1:9/x.dtd">',
    '<!DOCTYPE q [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
]


@st.composite
def ncmec_text(draw: st.DrawFn) -> str:
    """An NCMEC document: containers of entries, entities, namespaces, deep nesting, cuts."""
    entries = "".join(draw(st.lists(ncmec_entry(), max_size=5)))
    namespace = draw(
        st.sampled_from(["", ' xmlns="https://hashsharing.ncmec.org/x"', ' xmlns:n="u"'])
    )
    attributes = draw(
        st.sampled_from(
            ["", ' count="2" maxTimestamp="2026-01-01T00:00:00Z"', ' maxTimestamp="&e;"']
        )
    )
    depth = draw(st.sampled_from([0, 0, 1, 2, 10_000]))
    body = "<images" + attributes + ">" + entries + "</images>"
    if depth:
        body = "<x>" * depth + body + "</x>" * depth
    declaration = draw(
        st.sampled_from(
            [
                "",
                '<?xml version="1.0" encoding="UTF-8"?>',
                '<?xml version="1.0" encoding="UTF-16"?>',
                '<?xml version="1.0" encoding="x-unknown"?>',
                '<?xml version="1.0" encoding="UTF-7"?>',
                '<?xml version="1.0" encoding="shift_jis"?>',
            ]
        )
    )
    text = f"{declaration}{draw(st.sampled_from(DOCTYPES))}<queryResult{namespace}>{body}</queryResult>"
    cut = draw(st.sampled_from([None, None, 0.5]))
    return text if cut is None else text[: int(len(text) * cut)]


# -- encodings and compression -----------------------------------------------------------------


@st.composite
def encoded(draw: st.DrawFn, text: str) -> bytes:
    """`text` as bytes the way a list may arrive: UTF-8 (BOM or not), UTF-16, Latin-1, invalid
    UTF-8, NULs, compressed (and possibly cut short)."""
    how = draw(
        st.sampled_from(["utf-8", "utf-8", "bom", "utf-16", "utf-16-be", "latin-1", "surrogates"])
    )
    if how == "bom":
        data = b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    elif how == "utf-16":
        data = text.encode("utf-16", "surrogatepass")
    elif how == "utf-16-be":
        data = b"\xfe\xff" + text.encode("utf-16-be", "surrogatepass")
    elif how == "latin-1":
        data = text.encode("latin-1", "replace")
    elif how == "surrogates":
        data = text.encode("utf-8", "surrogatepass") + b"\xed\xa0\x80\xff\xfe"
    else:
        data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\x00" + data[at:]
    compression = draw(st.sampled_from([None, None, None, "gz", "bz2", "xz"]))
    if compression is not None:
        data = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[compression](data)
        cut = draw(st.sampled_from([None, None, 0.5, 0.95]))
        if cut is not None:
            data = data[: int(len(data) * cut)]
    return data
