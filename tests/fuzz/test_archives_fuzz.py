"""read_file over mutated archives (zip, tar and its compressions, single-file gz/bz2/xz, 7z,
encrypted and nested ones): items and ScanError lines only, in a child process (a crash or a
hang in libarchive is a failure, its input saved under fuzz/artifacts)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from support.archives import make_tar, make_zip

from fuzz import seeds
from fuzz.isolate import Runner
from fuzz.strategies import budget, mutated


@budget(200)
@given(data=mutated(seeds.archive_seeds()))
def test_read_file_of_mutated_archives(runner: Runner, data: bytes) -> None:
    runner.check("archive", data)


@budget(40)
@given(
    inner=mutated(seeds.archive_seeds(), max_mutations=3),
    outer=st.sampled_from(["zip", "tar"]),
    name=st.sampled_from(["inner.zip", "inner.7z", "inner.tar.gz", "x.jpg", "inner"]),
)
def test_read_file_of_damaged_archives_nested_in_sound_ones(
    runner: Runner, inner: bytes, outer: str, name: str
) -> None:
    members = {name: inner, "after.txt": b"after\n"}
    runner.check("archive", make_zip(members) if outer == "zip" else make_tar(members))
