"""Issue 12: outputs are never lost, bad numbers and formats are refused before any work, one line each.

Each test names the item of the issue it checks. Real weights, small generated clips and images.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FRAMES, FPS = 24, 24


@pytest.fixture(scope="module")
def clip(tmp_path_factory, write_clip) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=FRAMES, fps=FPS, size=(96, 64))


def video(clip: Path, out: Path, *extra: str) -> list[str]:
    return [
        "video",
        str(clip),
        "-o",
        str(out),
        "--style",
        "starry_night",
        "--style-size",
        "64",
        "--backend",
        "torch",
        *extra,
    ]


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) >= 1 and lines[-1].startswith("error: "), err
    assert "Traceback" not in err
    return lines[-1]


# ----- 1. a failed or early-interrupted run never deletes an existing output -----


def test_failed_video_run_keeps_the_existing_output(clip, tmp_path, capsys):
    from main import main

    out = tmp_path / "k.mp4"
    out.write_bytes(b"precious")
    assert main(video(clip, out) + ["--style", "nosuchstyle"]) == 2
    assert "nosuchstyle" in one_error_line(capsys.readouterr().err)
    assert out.read_bytes() == b"precious" and not out.with_name("k.mp4.part").exists()


def test_ctrl_c_while_the_model_loads_keeps_the_existing_output(clip, tmp_path, capsys, monkeypatch):
    from main import main
    import realtime.stylizer

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(realtime.stylizer, "build_stylizer", interrupted)
    out = tmp_path / "k.mp4"
    out.write_bytes(b"precious")
    assert main(video(clip, out)) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
    assert out.read_bytes() == b"precious" and not out.with_name("k.mp4.part").exists()


def test_a_complete_run_replaces_the_output_and_says_so_first(clip, tmp_path, capsys):
    from main import main

    out = tmp_path / "k.mp4"
    out.write_bytes(b"old")
    assert main(video(clip, out)) == 0
    assert f"note: {out} exists; it is replaced when this job completes" in capsys.readouterr().err
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == FRAMES
    assert not out.with_name("k.mp4.part").exists()
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask()


# ----- 3. unwritable folder in the first second; artifacts with the user's umask -----


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fails the test if a model is built: a check that must come first is asserted by order, not by a clock."""
    import models.registry

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built before the input was refused")

    monkeypatch.setattr(models.registry, "create_model", refuse)


def test_unwritable_output_folder_fails_before_the_model_loads(clip, capsys, no_model_loads):
    from main import main

    assert main(video(clip, Path("/proc/self/out.mp4"))) == 2
    captured = capsys.readouterr()
    assert one_error_line(captured.err).startswith("error: cannot write to folder /proc/self")
    assert captured.out == ""


def test_atomic_write_gives_the_user_umask_and_keeps_the_old_file_on_failure(tmp_path):
    from core.atomic import atomic_write

    target = tmp_path / "model.onnx"
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(b"v1"))
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask()  # mkstemp alone gives 0600

    def fails(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, fails)
    assert target.read_bytes() == b"v1" and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_part_file_rule(tmp_path):
    from core.atomic import PartFile

    new = PartFile(tmp_path / "new.mp4")
    new.create().write_bytes(b"partial")
    assert new.finish(complete=False, has_content=True) == tmp_path / "new.mp4"  # no file had the name
    old = tmp_path / "old.mp4"
    old.write_bytes(b"precious")
    cut = PartFile(old)
    cut.create().write_bytes(b"partial")
    assert cut.finish(complete=False, has_content=True) == tmp_path / "old.mp4.part"
    assert old.read_bytes() == b"precious" and "old.mp4 existed and was left as it was" in cut.describe_kept()
    empty = PartFile(old)
    empty.create()
    assert empty.finish(complete=False, has_content=False) is None and old.read_bytes() == b"precious"
    done = PartFile(old)
    done.create().write_bytes(b"complete")
    assert done.finish(complete=True, has_content=True) == old and old.read_bytes() == b"complete"


def test_image_output_is_written_whole_with_the_user_umask(content_path, tmp_path):
    from core.images import save_image

    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    save_image(np.full((32, 32, 3), 200, np.uint8), out)
    assert cv2.imread(str(out)).shape == (32, 32, 3)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask()
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


# ----- 4. one overwrite rule for video and webcam --record -----


def test_recorder_replaces_the_name_it_was_given_and_never_another(tmp_path):
    from realtime.sinks import RecorderSink
    from realtime.sources import Frame

    given = tmp_path / "live.mp4"
    given.write_bytes(b"old recording")
    recorder = RecorderSink(given, FPS, start=True)
    image = np.full((64, 96, 3), 90, np.uint8)
    for take in range(2):
        for i in range(6):
            recorder.write(Frame(image, i, (take * 6 + i) / FPS), image)
        recorder.toggle()
        recorder.write(Frame(image, 6, 0.5), image)  # the stop applies at the next frame
        recorder.toggle()
    recorder.close()
    assert recorder.files[0] == given and recorder.files[1] != given and len(recorder.files) == 2
    for path in recorder.files:
        with av.open(str(path)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 6
    unnamed = tmp_path / "stylizer-recording.mp4"
    unnamed.write_bytes(b"earlier session")
    keys_only = RecorderSink(unnamed, FPS, start=False)
    keys_only.toggle()
    keys_only.write(Frame(image, 0, 0.0), image)
    keys_only.close()
    assert unnamed.read_bytes() == b"earlier session" and keys_only.files[0] != unnamed


def test_video_and_webcam_help_state_the_same_rule(capsys):
    from main import main

    for command, option in (("video", "OUTPUT"), ("webcam", "FILE")):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"an existing {option} is replaced" in text and f"{option}.part" in text


# ----- 5. non-finite numbers refused everywhere -----


@pytest.mark.parametrize(
    "argv",
    [
        ["image", "x.jpg", "--style", "candy", "--style-weights", "nan", "1", "-o", "o.png"],
        ["video", "x.mp4", "-o", "o.mp4", "--alpha", "nan"],
        ["webcam", "--max-seconds", "inf"],
        ["webcam", "--fps", "nan"],
        ["preview", "x.jpg", "--style", "candy", "--at", "inf", "-o", "o.png"],
        ["train", "adain", "--content", "c", "--style", "s", "--lr", "nan"],
    ],
)
def test_non_finite_numbers_are_refused(argv, capsys):
    from main import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "must be a finite number" in capsys.readouterr().err


def test_nan_style_weights_no_longer_write_a_black_image(content_path, tmp_path, capsys):
    from main import main

    out = tmp_path / "o.png"
    with pytest.raises(SystemExit):
        main(
            [
                "image",
                str(content_path),
                "--style",
                "candy",
                "starry_night",
                "--style-weights",
                "nan",
                "1",
                "-o",
                str(out),
            ]
        )
    assert not out.exists()


# ----- 6. GIF refused with the formats that work; 7. AVI header -----


@pytest.mark.parametrize("extra", [[], ["--no-audio"]])
def test_gif_output_is_refused_naming_the_formats_that_work(clip, tmp_path, capsys, extra):
    from main import main

    assert main(video(clip, tmp_path / "o.gif", *extra)) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert line.startswith("error: cannot write video as .gif") and ".mp4, .m4v, .mov, .mkv, .webm, .avi" in line
    assert captured.out == "" and list(tmp_path.iterdir()) == []


def test_avi_header_has_the_real_rate_and_frame_count(tmp_path):
    from realtime.video_writer import VideoFileWriter

    writer = VideoFileWriter(tmp_path / "o.avi", FPS)
    for i in range(48):
        writer.write(np.full((64, 96, 3), i * 5, np.uint8), i / FPS)
    writer.close()
    with av.open(str(tmp_path / "o.avi")) as c:
        stream = c.streams.video[0]
        assert stream.average_rate == FPS and stream.frames == 48
        assert c.duration / av.time_base == pytest.approx(2.0, abs=0.05)


# ----- 8. --size capped with a clear message -----


@pytest.mark.parametrize(
    "argv",
    [
        lambda clip, out, content: video(clip, out, "--size", "8000"),
        lambda clip, out, content: [
            "image",
            str(content),
            "--style",
            "candy",
            "--size",
            "8000",
            "-o",
            str(out) + ".png",
        ],
    ],
)
def test_huge_size_is_refused_at_once(argv, clip, content_path, tmp_path, capsys, no_model_loads):
    from main import main

    assert main(argv(clip, tmp_path / "o.mp4", content_path)) == 2  # before any model is built
    line = one_error_line(capsys.readouterr().err)
    assert "--size 8000 makes a" in line and "MP" in line and re.search(r"use --size \d+ or less", line)
    assert list(tmp_path.iterdir()) == []  # and nothing written


# ----- 10. messages -----


def test_folders_given_as_inputs_are_called_folders(tmp_path, capsys):
    from main import main

    image = tmp_path / "photo.jpg"
    cv2.imwrite(str(image), np.full((64, 64, 3), 128, np.uint8))
    for argv in (
        ["image", str(tmp_path), "--style", "candy", "-o", str(tmp_path / "o.png")],
        [
            "image",
            str(image),
            "--style",
            "candy",
            "--mask",
            str(tmp_path),
            "--style",
            "candy",
            "udnie",
            "-o",
            str(tmp_path / "o.png"),
        ],
        ["video", str(tmp_path), "-o", str(tmp_path / "o.mp4")],
        ["preview", str(tmp_path), "--style", "candy", "-o", str(tmp_path / "o.png")],
    ):
        assert main(argv) == 2
        line = one_error_line(capsys.readouterr().err)
        assert "is a folder" in line and "does not exist" not in line


def test_an_image_too_small_after_resizing_suggests_size_0(content_path, tmp_path, capsys):
    from main import main

    assert main(["image", str(content_path), "--style", "candy", "--size", "8", "-o", str(tmp_path / "o.png")]) == 2
    assert "--size 0" in one_error_line(capsys.readouterr().err)


# ----- 11. progress: log lines and pipes -----


def test_progress_in_a_pipe_is_plain_lines(clip, tmp_path, capsys):
    from main import main

    assert main(video(clip, tmp_path / "o.mp4")) == 0
    err = capsys.readouterr().err  # captured: not a terminal
    assert "\r" not in err
    bar_lines = [line for line in err.splitlines() if line.startswith("stylising")]
    assert 1 <= len(bar_lines) <= 3 and f"{FRAMES}/{FRAMES}" in bar_lines[-1]


def test_log_lines_go_through_the_bar(capsys):
    import logging

    from cli.common import logging_through, progress_bar

    logging.basicConfig(level=logging.INFO)
    with progress_bar(10, "work", "it") as bar, logging_through(bar):
        bar.update(3)
        logging.getLogger("stylizer.test").warning("a message in the middle")
        bar.update(7)
    lines = capsys.readouterr().err.splitlines()
    assert any(line.endswith("a message in the middle") and not line.startswith("work") for line in lines)


# ----- 12. defaults printed once -----


@pytest.mark.parametrize("command", ["image", "video", "webcam", "export", "preview", "train", "bench"])
def test_help_prints_each_default_once(command, capsys):
    from main import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: False)" not in text
    assert not re.search(r"\(default: [^)]*\) \(default:", text)


# ----- 13, 14, 2: webcam styles, exit code 130 on SIGTERM, recording finished -----


def test_webcam_loads_every_style_and_sigterm_ends_it_with_130_and_a_finished_recording(tmp_path, write_clip, shared):
    styles = tmp_path / "search" / "styles"
    styles.mkdir(parents=True)
    for i in range(12):
        cv2.imwrite(str(styles / f"pattern{i:02d}.png"), np.full((48, 48, 3), (i * 20, 255 - i * 20, 128), np.uint8))
    live = tmp_path / "live.mp4"
    live.write_bytes(b"old recording")
    env = dict(os.environ, STYLIZER_PATH=f"{shared / 'weights'}{os.pathsep}{tmp_path / 'search'}")
    long_clip = write_clip(tmp_path / "long.mp4", frames=10 * FPS, fps=FPS, size=(96, 64))  # 10 s as a camera
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "main.py"),
            "webcam",
            "--camera",
            str(long_clip),
            "--no-window",
            "--size",
            "64",
            "--style-size",
            "48",
            "--backend",
            "torch",
            "--record",
            str(live),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stdout.readline()
    seen = []
    for line in iter(proc.stderr.readline, ""):  # an event, not a time: the recorder's first frame
        seen.append(line)
        if "recording to" in line and live.name in line:
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130, "".join(seen) + proc.stderr.read()
    out, err = first + proc.stdout.read(), "".join(seen) + proc.stderr.read()
    # the default styles: the 8 bundled paintings, then every style on the search path
    assert "20 styles loaded (keys 1-9 pick the first nine, n/p step through all): starry_night, the_scream" in first
    assert first.rstrip().endswith("mondrian, " + ", ".join(f"pattern{i:02d}" for i in range(12)))
    assert "Traceback" not in err and f"recorded {live}" in out
    with av.open(str(live)) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 1


# ----- 3. exported artifacts: a failed or interrupted export leaves a good file already there -----


def test_a_failed_export_keeps_the_artifact_already_there(tmp_path, store, monkeypatch):
    import export.verify
    from export.verify import export_onnx_verified
    from export.errors import ArtifactError
    from models.registry import create_model

    target = tmp_path / "microast-fp32.onnx"
    target.write_bytes(b"a verified artifact from yesterday")

    def fails(path, *args, **kwargs):
        assert Path(path) != target and Path(path).parent == tmp_path  # verified under a name beside it
        raise ArtifactError("differs from PyTorch")

    monkeypatch.setattr(export.verify, "verify_onnx", fails)
    with pytest.raises(ArtifactError):
        export_onnx_verified(create_model("microast", store=store), target, "fp32", store)
    assert target.read_bytes() == b"a verified artifact from yesterday"
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["microast-fp32.onnx"]


def test_export_into_a_new_folder_under_a_read_only_one_is_one_line(capsys):
    """Issue 21: mkdir under a folder no one may write (here /sys; a read-only disk gives OSError 30 the same way)."""
    from main import main

    assert main(["export", "--model", "microast", "--format", "onnx", "-o", "/sys/stylizer-new/models"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: cannot create the output folder /sys/stylizer-new/models: ")
    assert line.endswith("choose another -o folder")
