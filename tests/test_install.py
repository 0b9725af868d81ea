"""``pip install .`` (not editable): the wheel holds every package and the package data, and the installed
``stylizer`` works from another folder with nothing but what it ships (no STYLIZER_PATH, an empty HOME)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import cv2
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "cli", "cluster", "export", "gui", "models", "realtime")


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding only the built wheel; its dependencies are this interpreter's (a .pth line), offline."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "src"  # a copy, so the build's build/ and egg-info folders stay out of the checkout
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "tests", "__pycache__", "build", "*.egg-info", ".carry", "runs", "out"
        ),
    )
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp / "whl"),
            str(source),
        ]
    )
    wheel = next((tmp / "whl").glob("stylizer-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "main.py" in names and all(f"{p}/__init__.py" in names for p in PACKAGES)
    assert "models/weights/microast_official.safetensors" in names and "models/assets/examples/rocket.mp4" in names
    assert sum(n.startswith("models/assets/styles/") and n.endswith(".jpg") for n in names) == 8
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    # .pth files inside the added folder (this checkout's editable install) are not processed: the wheel wins
    Path(purelib, "_deps_of_the_test_runner.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)])
    return venv


def test_installed_stylizer_runs_from_another_folder_with_what_it_ships(installed, tmp_path):
    bindir = installed / ("Scripts" if os.name == "nt" else "bin")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("STYLIZER_PATH", "XDG_CACHE_HOME", "PYTHONPATH")}
    env.update(HOME=str(home), https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    where = run(
        [str(bindir / "python"), "-c", "import main, models.bundle as b; print(main.__file__); print(b.EXAMPLE_PHOTO)"],
        cwd=tmp_path,
        env=env,
    ).stdout.split()
    assert all(Path(p).is_relative_to(installed) for p in where), where
    assert "usage: stylizer" in run([str(bindir / "stylizer"), "--help"], cwd=tmp_path, env=env).stdout
    listing = run([str(bindir / "stylizer"), "models", "list"], cwd=tmp_path, env=env).stdout
    assert "bundled/all              found      (package) " + str(installed) in listing
    out = tmp_path / "out.png"
    run(
        [
            str(bindir / "stylizer"),
            "image",
            where[1],
            "--style",
            "starry_night",
            "--backend",
            "torch",
            "--size",
            "128",
            "-o",
            str(out),
        ],
        cwd=tmp_path,
        env=env,
    )
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (128, 128, 3)
