"""``main.py preview`` and the keyframe library: frames from images and videos, Gatys, side by side."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from main import main
from core.errors import InputError
from realtime.keyframe import side_by_side
from realtime.sources import grab_frame


def decoded_frames(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(float(f.time), f.to_ndarray(format="bgr24")) for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def bunny_frames(video_path) -> list[tuple[float, np.ndarray]]:
    return decoded_frames(video_path)


@pytest.mark.parametrize("at", [0.0, 1.01, 4.2, 9.95])
def test_grab_frame_is_the_frame_on_screen(video_path, bunny_frames, at):
    expected = max(i for i, (t, _) in enumerate(bunny_frames) if t <= at + 1e-6)
    np.testing.assert_array_equal(grab_frame(video_path, at), bunny_frames[expected][1])


def test_grab_frame_past_the_end_trusts_frames_not_the_header(shared):
    ntu = shared / "video" / "ntu.mp4"  # the header claims 422 frames (7.0 s); 362 are there (6.03 s)
    last_time = decoded_frames(ntu)[-1][0]
    assert grab_frame(ntu, last_time).shape == (480, 640, 3)
    with pytest.raises(InputError, match="past the end"):
        grab_frame(ntu, 6.5)


def test_grab_frame_of_an_image_and_bad_inputs(content_path, tmp_path):
    assert grab_frame(content_path).shape == cv2.imread(str(content_path)).shape
    with pytest.raises(InputError, match="only applies to videos"):
        grab_frame(content_path, 2.0)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(InputError, match="neither a readable image nor a video"):
        grab_frame(junk, 1.0)
    with pytest.raises(InputError, match="does not exist"):
        grab_frame(tmp_path / "missing.mp4")


@pytest.mark.parametrize("degrees", [90, 180])
def test_grab_frame_of_a_rotated_phone_video_is_upright(tmp_path, degrees, write_rotated_clip):
    shown = write_rotated_clip(path := tmp_path / "rotated.mp4", degrees)
    image = grab_frame(path, 0.05)
    assert image.shape == shown.shape and image.flags.c_contiguous
    assert np.abs(image.astype(int) - shown.astype(int)).mean() < 8


def test_side_by_side_matches_heights():
    left, right = np.zeros((40, 30, 3), np.uint8), np.full((20, 10, 3), 9, np.uint8)
    both = side_by_side(left, right, gap=4)
    assert both.shape == (40, 30 + 4 + 20, 3)
    assert (both[:, 30:34] == 255).all() and (both[:, 34:] == 9).all()


def test_preview_video_frame_side_by_side(video_path, bunny_frames, tmp_path, capsys):
    out = tmp_path / "keyframe.png"
    rc = main(
        [
            "preview",
            str(video_path),
            "--at",
            "2.5",
            "--style",
            "starry_night",
            "-o",
            str(out),
            "--size",
            "64",
            "--style-size",
            "64",
            "--iters",
            "8",
            "--side-by-side",
        ]
    )
    assert rc == 0
    image = cv2.imread(str(out))
    assert image.shape == (36, 64 + 8 + 64, 3)  # 640x360 at 64 px: [microast | gap | gatys]
    fast, gatys = image[:, :64], image[:, 72:]
    frame = cv2.resize(bunny_frames[60][1], (64, 36), interpolation=cv2.INTER_AREA)
    assert np.abs(gatys.astype(int) - frame).mean() < np.abs(fast.astype(int) - frame).mean()  # 8 steps from content
    assert np.abs(gatys.astype(int) - frame).mean() > 1  # but changed
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "gatys" in captured.err  # the tqdm bar


def test_preview_image_with_weights(content_path, style_path, tmp_path):
    out = tmp_path / "k.jpg"
    rc = main(
        [
            "preview",
            str(content_path),
            "--style",
            str(style_path),
            "-o",
            str(out),
            "--size",
            "48",
            "--iters",
            "3",
            "--style-weight",
            "1000",
            "--content-weight",
            "1",
        ]
    )
    assert rc == 0 and max(cv2.imread(str(out)).shape[:2]) == 48


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--at", "10.5"], ("past the end",)),
        (["--at", "1e30"], ("past the end",)),
        (["--style", "no_such_painting"], ("no_such_painting",)),
        (["-o", "{tmp}/missing/out.png"], ("does not exist",)),
        (["-o", "{tmp}/out.txt"], ("image suffix",)),
        (["--iters", "0"], ("at least 1",)),
    ],
)
def test_preview_errors_are_one_line(video_path, tmp_path, capsys, extra, words):
    args = {"--style": "starry_night", "-o": str(tmp_path / "out.png")}
    rest = [e.format(tmp=tmp_path) for e in extra]
    for flag, value in zip(rest[::2], rest[1::2]):
        args[flag] = value
    argv = ["preview", str(video_path), *[x for kv in args.items() for x in kv]]
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert all(w in err for w in words), err


def test_preview_negative_at_is_an_argparse_error(video_path, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["preview", str(video_path), "--at", "-1", "--style", "starry_night", "-o", str(tmp_path / "o.png")])
    assert exit_info.value.code == 2 and "--at" in capsys.readouterr().err
