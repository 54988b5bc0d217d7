"""Benchmark corpora: natural photos of 1-3 megapixels, and large files for digest throughput.

Photos come from Debian's mate-backgrounds and gnome-backgrounds packages (fetched with
`apt-get download` from the package registry, unpacked with `dpkg-deb -x`, never installed) and
from scikit-image's bundled images; the corpus is random crops and rescales of them saved as JPEG,
the same for a given seed.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

from PIL import Image

DATA = Path(os.environ.get("VIGIL_BENCH_DATA", Path(__file__).resolve().parents[1] / "bench-data"))
PACKAGES = ("mate-backgrounds", "gnome-backgrounds")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def backgrounds() -> list[Path]:
    """Source photos: the Debian wallpaper packages, unpacked once under bench-data/."""
    root = DATA / "backgrounds"
    if not (root / ".done").exists():
        debs = DATA / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        download = ["apt-get", "download", *PACKAGES]
        if subprocess.run(download, cwd=debs, capture_output=True).returncode != 0:
            # A fresh machine has no package lists yet: fetch them once, then try again.
            sudo = [] if os.geteuid() == 0 else ["sudo"]
            subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, capture_output=True)
            subprocess.run(download, cwd=debs, check=True, capture_output=True)
        for deb in debs.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        (root / ".done").touch()
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    out = []
    for p in files:
        with Image.open(p) as im:
            if min(im.size) >= 1000:
                out.append(p)
    return out


def skimage_photos() -> list[Path]:
    """scikit-image's bundled photographs (small, but real photos)."""
    import skimage.data

    d = Path(skimage.data.__file__).parent
    names = [
        "astronaut.png",
        "coffee.png",
        "chelsea.png",
        "rocket.jpg",
        "hubble_deep_field.jpg",
        "retina.jpg",
        "motorcycle_left.png",
        "motorcycle_right.png",
        "horse.png",
        "camera.png",
    ]
    return [d / n for n in names if (d / n).exists()]


def photos(n: int = 300, seed: int = 1) -> list[Path]:
    """n JPEG photos of 1-3 megapixels (crops and rescales of the sources), made once."""
    out = DATA / f"photos-{n}-{seed}"
    done = out / ".done"
    if done.exists():
        return sorted(out.glob("*.jpg"))
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    sources = backgrounds() + skimage_photos()
    images = [Image.open(p).convert("RGB") for p in sources]
    for i in range(n):
        im = images[i % len(images)]
        target_mp = rng.uniform(1.0, 3.0) * 1e6
        aspect = rng.choice([4 / 3, 3 / 2, 16 / 9, 3 / 4, 2 / 3, 1.0])
        w = int((target_mp * aspect) ** 0.5)
        h = int(target_mp / w)
        # Crop a random region of the source with that aspect, then resize to w x h.
        scale = rng.uniform(0.5, 1.0)
        cw = min(im.width, int(min(im.width, im.height * aspect) * scale))
        ch = min(im.height, max(1, int(cw / aspect)))
        x = rng.randint(0, im.width - cw)
        y = rng.randint(0, im.height - ch)
        crop = im.crop((x, y, x + cw, y + ch)).resize((w, h), Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        crop.save(out / f"photo-{i:04d}.jpg", "JPEG", quality=rng.choice([80, 85, 90, 95]))
    done.touch()
    return sorted(out.glob("*.jpg"))


def photo_tree(n: int = 300, copies: int = 4) -> Path:
    """A folder holding `copies` copies of the n photos (separate files, not links: a scan
    reads a hard link's inode once), for scans long enough that starting and stopping the
    workers is not a large part of them. Made once."""
    out = DATA / f"scan-{n}-{copies}"
    done = out / ".done"
    if not done.exists():
        for c in range(copies):
            sub = out / f"copy-{c}"
            sub.mkdir(parents=True, exist_ok=True)
            for p in photos(n):
                shutil.copyfile(p, sub / p.name)
        done.touch()
    return out


def big_files(total_mb: int = 1024, count: int = 8) -> list[Path]:
    """Incompressible files for digest throughput (made once)."""
    out = DATA / f"big-{total_mb}-{count}"
    done = out / ".done"
    if not done.exists():
        out.mkdir(parents=True, exist_ok=True)
        each = total_mb * 1024 * 1024 // count
        for i in range(count):
            with open(out / f"blob-{i}.bin", "wb") as f:
                left = each
                while left:
                    n = min(left, 1 << 24)
                    f.write(os.urandom(n))
                    left -= n
        done.touch()
    return sorted(out.glob("*.bin"))


def warm(paths: list[Path]) -> None:
    """Read files once so every contender reads them from the page cache."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass
