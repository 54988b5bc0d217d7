"""`vigil hashset` and `vigil hash` end to end, on the example lists of every field format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

VIGIL = [sys.executable, "-m", "vigil.cli"]


def vigil(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIGIL_HOME": str(home)}
    return subprocess.run([*VIGIL, *args], capture_output=True, text=True, env=env, timeout=300)


EXAMPLES = {
    "vics-1.3-media.json": "vics",
    "vics-2.0-cases.json": "vics",
    "ncmec-entries-example.xml": "ncmec",
    "example-hashes.csv": "csv",
    "example.md5sum.txt": "md5sum",
    "example.sha1sum.txt": "sha1sum",
    "example.pdq.txt": "pdq",
    "NSRLFile-example.txt": "nsrl",
    "example.hsh": "hashkeeper",
}


@pytest.mark.parametrize("name,fmt", sorted(EXAMPLES.items()))
def test_import_every_example_format(shared_dir: Path, tmp_path: Path, name: str, fmt: str) -> None:
    proc = vigil("hashset", "import", str(shared_dir / "formats" / name), "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["hashset"]["format"] == fmt
    assert out["hashset"]["entries"] > 0
    assert out["hashset"]["known_good"] is (fmt == "nsrl")


def test_list_remove_and_replace(shared_dir: Path, tmp_path: Path) -> None:
    f = shared_dir / "formats" / "example-hashes.csv"
    assert vigil("hashset", "import", str(f), "--name", "a", home=tmp_path).returncode == 0
    again = vigil("hashset", "import", str(f), "--name", "a", home=tmp_path)
    assert "nothing changed" in again.stdout
    other = tmp_path / "other.csv"
    other.write_text("md5,category\n" + "ab" * 16 + ",2\n")
    replaced = vigil(
        "hashset", "import", str(other), "--name", "a", "--version", "v9", home=tmp_path
    )
    assert "replaced version" in replaced.stdout
    sets = [
        json.loads(line)
        for line in vigil("hashset", "list", "--json", home=tmp_path).stdout.splitlines()
    ]
    assert [(s["name"], s["entries"], s["version"]) for s in sets] == [("a", 1, "v9")]
    assert vigil("hashset", "remove", "a", home=tmp_path).returncode == 0
    assert "no hash sets imported" in vigil("hashset", "list", home=tmp_path).stdout
    gone = vigil("hashset", "remove", "a", home=tmp_path)
    assert gone.returncode == 2 and "no hash set named 'a'" in gone.stderr


def test_ambiguous_list_names_the_format_option(tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_text("ab" * 32 + "\n" + "cd" * 32 + "\n")
    proc = vigil("hashset", "import", str(f), home=tmp_path)
    assert proc.returncode == 2
    assert "--format" in proc.stderr
    ok = vigil("hashset", "import", str(f), "--format", "pdq", "--json", home=tmp_path)
    assert json.loads(ok.stdout)["hashset"]["counts"]["by_kind"] == {"pdq": 2}


def test_unparseable_file_leaves_the_catalog_as_it_was(shared_dir: Path, tmp_path: Path) -> None:
    good = shared_dir / "formats" / "vics-2.0-cases.json"
    assert vigil("hashset", "import", str(good), "--name", "police", home=tmp_path).returncode == 0
    before = vigil("hashset", "list", "--json", home=tmp_path).stdout
    broken = tmp_path / "broken.json"
    broken.write_text(good.read_text()[:-40])  # cut off in the middle
    proc = vigil("hashset", "import", str(broken), "--name", "police", home=tmp_path)
    assert proc.returncode == 2 and "vigil: error:" in proc.stderr
    assert vigil("hashset", "list", "--json", home=tmp_path).stdout == before


def test_malformed_lines_are_counted_with_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "list.md5"
    f.write_text(
        "\n".join(["ab" * 16 + "  a.jpg", "xyz  b.jpg", "cd" * 16 + "  c.jpg", "12345  d.jpg"])
        + "\n"
    )
    proc = vigil("hashset", "import", str(f), "--format", "md5sum", "--json", home=tmp_path)
    out = json.loads(proc.stdout)
    assert out["hashset"]["entries"] == 2 and out["malformed"] == 2
    assert [p.split(":")[0] for p in out["problems"]] == ["line 2", "line 4"]
    text = vigil("hashset", "import", str(f), "--format", "md5sum", "--name", "t2", home=tmp_path)
    assert "malformed records skipped: 2" in text.stderr and "line 4" in text.stderr


@pytest.mark.parametrize("fmt", ["vics", "csv"])
def test_export_round_trip(shared_dir: Path, tmp_path: Path, fmt: str) -> None:
    src = shared_dir / "formats" / "example-hashes.csv"
    vigil("hashset", "import", str(src), "--name", "ex", home=tmp_path)
    out = tmp_path / f"ex.{fmt}"
    proc = vigil("hashset", "export", "ex", "--format", fmt, "-o", str(out), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = vigil("hashset", "import", str(out), "--name", "back", "--json", home=tmp_path)
    back = json.loads(proc.stdout)["hashset"]
    orig = json.loads(vigil("hashset", "list", "--json", home=tmp_path).stdout.splitlines()[1])
    assert back["counts"]["by_kind"] == orig["counts"]["by_kind"]
    assert back["counts"]["by_category"] == orig["counts"]["by_category"]


def test_hash_prints_fingerprints_of_files_and_members(tmp_path: Path) -> None:
    import io
    import zipfile

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "PNG")
    (tmp_path / "pic.dat").write_bytes(buf.getvalue())
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("in/pic.png", buf.getvalue())
    (tmp_path / "a.zip").write_bytes(z.getvalue())
    proc = vigil(
        "hash",
        "--rotations",
        str(tmp_path / "pic.dat"),
        str(tmp_path / "a.zip"),
        home=tmp_path / "h",
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(Path(r["path"]).name, r["member"]) for r in rows] == [
        ("pic.dat", None),
        ("a.zip", "in/pic.png"),
        ("a.zip", None),
    ]
    assert rows[0]["media_type"] == "image/png" and rows[2]["media_type"] == "application/zip"
    assert rows[0]["sha256"] == rows[1]["sha256"] and len(rows[0]["pdq_dihedral"]) == 8
    assert rows[2]["pdq"] is None


def test_hash_skips_what_has_no_content(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_bytes(b"a\n")
    (d / "X11").symlink_to(".")
    (d / "gone").symlink_to(d / "nowhere")
    proc = vigil("hash", str(d), home=tmp_path / "h")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["path"] for line in proc.stdout.splitlines()] == [str(d / "a.txt")]
    assert sorted(proc.stderr.splitlines()) == [
        f"vigil: skipped: {d / 'X11'}: symlink-loop: leads back to {d}, a directory it is inside; "
        "not walked again",
        f"vigil: skipped: {d / 'gone'}: broken-symlink: points to '{d / 'nowhere'}', which does "
        "not exist",
    ]
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.effect_noise((64, 64), 40).save(buf, format="PNG")
    (d / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])  # damage fails
    assert vigil("hash", str(d), home=tmp_path / "h").returncode == 2
