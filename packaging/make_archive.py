"""Finish the PyInstaller bundle and pack it: ``dist/Hearth`` -> ``dist/Hearth-<version>-<os>-<machine>.tar.gz``.

Adds the desktop entry, its installer script and the icon to the bundle folder, writes the archive
(under a temporary name, renamed when complete), and prints the unpacked size, the archive size and the
ten biggest pieces as a Markdown table; the same figures go to ``dist/Hearth-sizes.json``.

    .venv/bin/python packaging/make_archive.py [--dist dist] [--no-archive]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

PACKAGING = Path(__file__).resolve().parent
ROOT = PACKAGING.parent
sys.path.insert(0, str(ROOT))
from engines.core.version import __version__  # noqa: E402

MB = 1024 * 1024


def platform_tag() -> str:
    system = {"darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("aarch64", "arm64")
    return f"{system}-{machine}"


def add_desktop_files(bundle: Path) -> None:
    shutil.copy2(ROOT / "assets" / "icons" / "hearth.png", bundle / "hearth.png")
    if sys.platform.startswith("linux"):
        shutil.copy2(PACKAGING / "linux" / "hearth.desktop", bundle / "hearth.desktop")
        shutil.copy2(PACKAGING / "linux" / "install-desktop-entry.sh", bundle / "install-desktop-entry.sh")


def pieces(bundle: Path) -> Counter:
    """Bytes per piece: a top-level package (folder) of _internal, or a loose file's name."""
    sizes: Counter = Counter()
    for path in bundle.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        rel = path.relative_to(bundle).parts
        if rel[0] == "_internal" and len(rel) > 2:
            key = rel[1]
        elif rel[0] == "_internal":
            key = rel[1] if not rel[1].endswith((".so", ".dll", ".dylib")) and ".so." not in rel[1] else "shared libraries (top level)"
        else:
            key = rel[0]
        key = key.split(".libs")[0] + ".libs" if key.endswith(".libs") else key
        sizes[key] += path.stat().st_size
    return sizes


def write_archive(bundle: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=bundle.name)
    os.replace(partial, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", default=str(ROOT / "dist"))
    parser.add_argument("--no-archive", action="store_true", help="only finish the folder and report its size")
    args = parser.parse_args()
    dist = Path(args.dist)
    bundle = dist / "Hearth"
    if not bundle.is_dir():
        print(f"error: {bundle} does not exist: build it first (make installer)", file=sys.stderr)
        return 2
    add_desktop_files(bundle)
    sizes = pieces(bundle)
    unpacked = sum(sizes.values())
    report = {"version": __version__, "platform": platform_tag(), "unpacked_mb": round(unpacked / MB, 1),
              "biggest": [{"piece": k, "mb": round(v / MB, 1)} for k, v in sizes.most_common(10)]}
    if not args.no_archive:
        target = dist / f"Hearth-{__version__}-{platform_tag()}.tar.gz"
        started = time.perf_counter()
        write_archive(bundle, target)
        report.update(archive=target.name, archive_mb=round(target.stat().st_size / MB, 1),
                      archive_s=round(time.perf_counter() - started, 1))
    (dist / "Hearth-sizes.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"unpacked: {report['unpacked_mb']} MB" + (f"; archive {report['archive']}: {report['archive_mb']} MB "
                                                       f"({report['archive_s']} s)" if "archive" in report else ""))
    print("\n| piece | MB |\n|---|---:|")
    for row in report["biggest"]:
        print(f"| {row['piece']} | {row['mb']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
