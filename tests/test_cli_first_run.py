"""First-run answers: doctor, a camera that does not open, help texts naming the bundled styles, and the
README's main job as a new user runs it (no STYLIZER_PATH, an empty HOME, the bundled example)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from main import main
from models.bundle import EXAMPLE_CLIP, EXAMPLE_PHOTO, bundled_style_names

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = (
    "Python",
    "PyTorch",
    "ONNX Runtime / TensorRT",
    "Cameras",
    "Virtual camera",
    "Weights and styles",
    "Summary",
)


def new_user_env(home: Path) -> dict[str, str]:
    """The environment of someone who just cloned the project: no search path, no cache, no proxy to reach out."""
    env = {k: v for k, v in os.environ.items() if k not in ("STYLIZER_PATH", "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        env[name] = "http://127.0.0.1:9"  # a download attempt fails at once instead of reaching the internet
    return env


def test_doctor_names_every_section_and_exits_0(capsys):
    assert main(["doctor", "--no-probe"]) == 0
    out = capsys.readouterr().out
    for title in SECTIONS:
        assert f"\n{title}\n" in out, title
    assert "microast       bundled checkpoint, from package" in out
    assert "8 bundled paintings" in out
    missing = out.split("\nSummary\n")[1]
    # every "-> fix:" above appears in the summary, and the summary is not empty
    fixes = [line.split("-> fix: ")[1] for line in out.splitlines() if "-> fix: " in line]
    assert all(fix in missing for fix in fixes) and missing.strip()


def test_doctor_speed_probe_picks_one_of_the_live_sizes(capsys):
    assert main(["doctor", "--backend", "torch"]) == 0  # (auto would first export the ONNX graph on a fresh cache)
    out = capsys.readouterr().out.split("\nSpeed probe\n")[1]
    assert "on torch cpu" in out and "213x160:" in out
    line = next(line for line in out.splitlines() if "live size" in line)
    assert "webcam --size" in line or "none reaches 12 fps" in line


@pytest.mark.parametrize("camera", ["9", "/dev/video99"])
def test_webcam_without_that_camera_is_one_line_naming_cameras_and_the_file_option(camera, tmp_path, capsys):
    rc = main(["webcam", "--camera", camera, "--no-window", "--max-seconds", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and "\n" not in err, err
    assert ("cameras that open: camera" in err) or ("no camera opens on this machine (indices 0-4 probed)" in err)
    assert f"--camera FILE (e.g. --camera {EXAMPLE_CLIP})" in err


@pytest.mark.parametrize("command", ["image", "video", "webcam", "gui"])
def test_help_lists_the_bundled_style_names(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert len(bundled_style_names()) == 8
    for name in bundled_style_names():
        assert name in text, name


def test_readme_main_job_on_the_bundled_example_as_a_new_user(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "astronaut_starry.png"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "main.py"),
            "image",
            str(EXAMPLE_PHOTO),
            "--style",
            "starry_night",
            "--backend",
            "torch",
            "--size",
            "256",
            "-o",
            str(out),
        ],
        cwd=tmp_path,
        env=new_user_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (256, 256, 3)
    assert not (home / ".cache" / "stylizer" / "microast_official.safetensors").exists()  # nothing was fetched


def test_webcam_plays_the_bundled_clip_as_a_camera(tmp_path, capsys):
    record = tmp_path / "live.mp4"
    rc = main(
        [
            "webcam",
            "--camera",
            str(EXAMPLE_CLIP),
            "--no-window",
            "--style",
            "the_scream",
            "--size",
            "96",
            "--backend",
            "torch",
            "--max-seconds",
            "1",
            "--record",
            str(record),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    capture = cv2.VideoCapture(str(record))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape[:2] == (320, 480)


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path):
    """`stylizer models list | head -1`: the pipe closes before the listing is written; 141 as a shell says."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "models", "list"],
        cwd=tmp_path,
        env=new_user_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # the reader is gone before the first line is printed
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
