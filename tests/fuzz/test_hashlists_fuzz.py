"""read_hashlist over hostile lists: entries (well-formed ones only) and HashListError, nothing
else. Structure-aware generators per format, then byte mutations of the example lists; each
list is read as detected and as its format named."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fuzz import listgen, seeds
from fuzz.isolate import Runner
from fuzz.strategies import budget, mutated
from fuzz.targets import hashlist_input

GENERATORS = {
    "md5sum": listgen.sums_text,
    "sha1sum": listgen.sums_text,
    "sha256sum": listgen.sums_text,
    "pdq": listgen.pdq_text,
    "vpdq": listgen.vpdq_text,
    "csv": listgen.csv_text(),
    "nsrl": listgen.csv_text(),
    "hashkeeper": listgen.csv_text(),
    "vpdq-csv": listgen.csv_text(),
    "vics": listgen.vics_text(),
    "ncmec": listgen.ncmec_text(),
}


def read_as(runner: Runner, fmt: str, content: bytes) -> None:
    runner.check("hashlist", hashlist_input(fmt, content))


@budget(30)
@given(data=st.data(), fmt=st.sampled_from(sorted(GENERATORS)), auto=st.booleans())
def test_structured_lists_with_hostile_values(
    runner: Runner, data: st.DataObject, fmt: str, auto: bool
) -> None:
    text = data.draw(GENERATORS[fmt])
    content = data.draw(listgen.encoded(text))
    read_as(runner, "auto" if auto else fmt, content)


@budget(60)
@given(text=listgen.vics_text(), auto=st.booleans())
def test_vics_documents(runner: Runner, text: str, auto: bool) -> None:
    read_as(runner, "auto" if auto else "vics", text.encode("utf-8", "surrogatepass"))


@budget(15)
@given(text=listgen.deep_json(), auto=st.booleans())
def test_deeply_nested_json(runner: Runner, text: str, auto: bool) -> None:
    read_as(runner, "auto" if auto else "vics", text.encode())


@budget(40)
@given(text=listgen.ncmec_text(), auto=st.booleans())
def test_ncmec_documents_with_entities(runner: Runner, text: str, auto: bool) -> None:
    read_as(runner, "auto" if auto else "ncmec", text.encode("utf-8", "surrogatepass"))


@budget(60)
@given(
    text=listgen.csv_text(), fmt=st.sampled_from(["auto", "csv", "nsrl", "hashkeeper", "vpdq-csv"])
)
def test_csv_family(runner: Runner, text: str, fmt: str) -> None:
    read_as(runner, fmt, text.encode("utf-8", "surrogatepass"))


@budget(60)
@given(
    text=st.one_of(listgen.sums_text, listgen.pdq_text, listgen.vpdq_text),
    fmt=st.sampled_from(["auto", "md5sum", "sha1sum", "sha256sum", "pdq", "vpdq"]),
)
def test_line_lists(runner: Runner, text: str, fmt: str) -> None:
    read_as(runner, fmt, text.encode("utf-8", "surrogatepass"))


@budget(150)
@given(data=mutated(seeds.hashlist_seeds()))
def test_mutated_example_lists(runner: Runner, data: bytes) -> None:
    runner.check("hashlist", data)
