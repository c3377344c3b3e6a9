"""The vendored QR decoder (dashboards/assets/vendor/) is the version dashboards/package.json pins
and package-lock.json locks: its header names it, the body is the package's file unchanged."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
VENDORED = DASHBOARDS / "assets" / "vendor" / "zxing-browser.min.js"
PACKAGE = "@zxing/browser"
UPSTREAM = "umd/zxing-browser.min.js"  # the file of the package that is vendored


def split(vendored: bytes) -> tuple[str, bytes]:
    """The vendored file's header comment and the package's file below it."""
    end = vendored.index(b"*/\n") + 3
    return vendored[:end].decode(), vendored[end:]


def locked_version() -> str:
    pinned = json.loads((DASHBOARDS / "package.json").read_text())["dependencies"][PACKAGE]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), f"{PACKAGE} not pinned exactly: {pinned}"
    lock = json.loads((DASHBOARDS / "package-lock.json").read_text())
    entry = lock["packages"][f"node_modules/{PACKAGE}"]
    assert entry["version"] == pinned and entry["integrity"].startswith("sha512-")
    return pinned


def test_the_vendored_decoder_names_the_locked_version_and_its_licenses() -> None:
    version = locked_version()
    header, body = split(VENDORED.read_bytes())
    assert header.startswith(f"/*! {PACKAGE} {version}, {UPSTREAM}, unchanged below")
    assert "MIT License" in header and "Apache License 2.0" in header
    recorded = re.search(r"sha512 of what follows: ([0-9a-f]{128})", header)
    assert recorded and recorded.group(1) == hashlib.sha512(body).hexdigest()
    licenses = (VENDORED.parent / "zxing-browser.LICENSES.txt").read_text()
    assert "MIT License" in licenses and "Apache License" in licenses


def test_the_vendored_decoder_is_the_locked_package_file(tmp_path: Path) -> None:
    """npm ci installs exactly the lockfile's tarball (it checks the sha512 integrity), and the
    vendored file's body is that tarball's file byte for byte."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    for name in ("package.json", "package-lock.json"):
        shutil.copy(DASHBOARDS / name, tmp_path / name)
    run = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    installed = tmp_path / "node_modules" / PACKAGE
    assert json.loads((installed / "package.json").read_text())["version"] == locked_version()
    _, body = split(VENDORED.read_bytes())
    assert body == (installed / UPSTREAM).read_bytes()
