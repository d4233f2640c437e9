#!/usr/bin/env python3
"""Writes the api-recorder wheel: the `api-recorder` binary as an installed script and the
`api_recorder` package (the pytest plugin, registered through a `pytest11` entry point).

    scripts/build_wheel.py --binary .build/release/api-recorder --version 0.1.0 --out dist

The wheel is tagged py3-none-PLATFORM: the binary is native, the Python code is pure. On Linux the
platform is manylinux_2_N_ARCH, N being the newest glibc symbol version the binary needs (read
with objdump), so pip installs it only where it runs. Only the standard library is used; the
result is a plain zip with the RECORD file pip checks.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "python" / "api_recorder"
NAME = "api_recorder"

METADATA = """\
Metadata-Version: 2.1
Name: api-recorder
Version: {version}
Summary: Record and replay LLM and tool API calls so tests run offline, deterministic and free: the api-recorder proxy and its pytest plugin
License: see the project repository
Requires-Python: >=3.9
Classifier: Framework :: Pytest
Classifier: Programming Language :: Python :: 3
Classifier: Operating System :: POSIX :: Linux
Description-Content-Type: text/markdown

The `api-recorder` command (a native binary, no Swift needed) and its pytest plugin.

    pip install api_recorder-*.whl
    pytest --api-recorder-mode record-if-missing   # record, with real keys
    pytest --api-recorder-mode replay              # replay: offline, no keys

`api-recorder run -- COMMAND` does the same for any other test runner.
"""

WHEEL = """\
Wheel-Version: 1.0
Generator: api-recorder scripts/build_wheel.py
Root-Is-Purelib: false
Tag: {tag}
"""

ENTRY_POINTS = """\
[pytest11]
api_recorder = api_recorder.pytest_plugin
"""


def platform_tag(binary: Path) -> str:
    machine = platform.machine()
    if sys.platform != "linux":
        raise SystemExit("build_wheel.py: only Linux wheels are built")
    objdump = shutil.which("objdump")
    if objdump is None:
        return f"linux_{machine}"
    symbols = subprocess.run([objdump, "-T", str(binary)], capture_output=True, text=True, check=True).stdout
    versions = [int(minor) for minor in re.findall(r"GLIBC_2\.(\d+)", symbols)]
    return f"manylinux_2_{max(versions + [17])}_{machine}"


def stripped(binary: Path) -> bytes:
    """The binary without its debug information (half its size), when `strip` is there."""
    strip = shutil.which("strip")
    if strip is None:
        return binary.read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / binary.name
        subprocess.run([strip, "-o", str(target), str(binary)], check=True)
        return target.read_bytes()


def digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build(binary: Path, version: str, out: Path) -> Path:
    tag = f"py3-none-{platform_tag(binary)}"
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{NAME}-{version}-{tag}.whl"
    dist_info = f"{NAME}-{version}.dist-info"
    files: list[tuple[str, bytes, int]] = []  # (path in the wheel, contents, mode)
    for source in sorted(PACKAGE.glob("*.py")):
        files.append((f"{NAME}/{source.name}", source.read_bytes(), 0o644))
    files.append((f"{NAME}-{version}.data/scripts/api-recorder", stripped(binary), 0o755))
    files.append((f"{dist_info}/METADATA", METADATA.format(version=version).encode(), 0o644))
    files.append((f"{dist_info}/WHEEL", WHEEL.format(tag=tag).encode(), 0o644))
    files.append((f"{dist_info}/entry_points.txt", ENTRY_POINTS.encode(), 0o644))
    record = "".join(f"{path},{digest(data)},{len(data)}\n" for path, data, _ in files) + f"{dist_info}/RECORD,,\n"
    files.append((f"{dist_info}/RECORD", record.encode(), 0o644))

    partial = wheel.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data, mode in files:
            info = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    for stale in out.glob(f"{NAME}-*.whl"):
        stale.unlink()
    partial.rename(wheel)
    return wheel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", type=Path, required=True, help="the release api-recorder binary")
    parser.add_argument("--version", required=True)
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    args = parser.parse_args()
    if not re.fullmatch(r"\d+(\.\d+)*([ab]|rc)?\d*(\.dev\d+)?", args.version):
        raise SystemExit(f"build_wheel.py: {args.version!r} is not a wheel version")
    print(build(args.binary, args.version, args.out))


if __name__ == "__main__":
    main()
