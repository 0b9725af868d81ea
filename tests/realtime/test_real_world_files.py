"""Issue 21: real-world video files: repaired timestamps, ADTS audio, size changes, one writer per output.

Clips come from ``tests/odd_clips.py`` (small, written with PyAV in tmp folders); the stylizer is
the real MicroAST on real weights, at a small size.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from tests.odd_clips import FPS, encoded_clip, size_change, swapped_pts, ts_with_adts, which_frame


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
        "--temporal",
        "off",
        *extra,
    ]


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(f.time) for f in container.decode(video=0)]


# ----- 1. best-effort timestamps: pts swapped in pairs, as a packed-bitstream DivX AVI gives them -----


@pytest.mark.parametrize("suffix", [".ts", ".mkv"])  # TS keeps monotonic dts; Matroska has none to fall back on
def test_swapped_pts_give_every_frame_its_own_increasing_time(tmp_path, suffix):
    from realtime.sources import VideoFileSource

    clip = swapped_pts(tmp_path / f"divx{suffix}", frames=30)
    with av.open(str(clip)) as container:  # the file really is broken that way
        raw = [f.pts for f in container.decode(video=0)]
    assert any(b < a for a, b in zip(raw, raw[1:]))
    source = VideoFileSource(clip)
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    source.close()
    assert [which_frame(f.image) for f in frames] == list(range(30))  # the decoder's order is right
    times = [f.timestamp for f in frames]
    steps = np.diff(times)
    assert np.allclose(steps, 1 / FPS, atol=1e-6), times  # one frame apart, none stacked on another
    assert source.repairs == 18  # 9 swapped pairs: both frames of each get the other's time


def test_swapped_pts_are_written_at_the_right_times(tmp_path, capsys):
    from main import main

    clip = swapped_pts(tmp_path / "divx.mkv", frames=30)
    out = tmp_path / "out.mp4"
    assert main(video(clip, out)) == 0
    times = frame_times(out)
    assert len(times) == 30
    assert np.allclose(np.diff(times), 1 / FPS, atol=1e-3), times
    assert "timestamps out of order" in capsys.readouterr().err


def test_mpeg4_b_frames_in_avi_keep_their_order_and_times(tmp_path):
    from realtime.sources import VideoFileSource

    clip = encoded_clip(tmp_path / "xvid.avi", "mpeg4", options={"bf": "2", "g": "12"}, audio="ac3")
    source = VideoFileSource(clip)
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    source.close()
    assert [which_frame(f.image) for f in frames] == list(range(30))
    assert np.allclose(np.diff([f.timestamp for f in frames]), 1 / FPS, atol=1e-6)
    assert source.repairs == 0


# ----- 2. ADTS AAC (MPEG-TS) into MP4: filtered to MP4's form, every frame and sample in the file -----


def samples(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(f.samples for f in container.decode(audio=0))


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_ts_with_adts_audio_into_mp4_keeps_every_frame_and_sample(tmp_path, capsys, suffix):
    from main import main

    clip = ts_with_adts(tmp_path / "broadcast.ts", frames=40)
    out = tmp_path / f"out{suffix}"
    assert main(video(clip, out)) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"wrote {out}: 40 frames") and "audio copied" in line
    if suffix != ".mkv":
        assert "aac_adtstoasc" in line  # says how the audio went in
    assert len(frame_times(out)) == 40 and samples(out) == samples(clip)
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.extradata  # an AudioSpecificConfig, not ADTS headers


def test_kept_count_is_what_the_muxer_took(tmp_path):
    from realtime.video_writer import VideoFileWriter

    writer = VideoFileWriter(tmp_path / "k.mp4", 25)
    image = np.zeros((64, 96, 3), np.uint8)
    for i in range(10):
        writer.write(image, i / 25)
    assert writer.frames == 10 and writer.written < 10  # x264 holds frames back: not in the file yet
    writer.close(complete=False)
    assert writer.written == 10 and len(frame_times(tmp_path / "k.mp4")) == 10


# ----- 4. one writer per output -----

HOLDER = """
import sys
from core.atomic import PartFile
part = PartFile(sys.argv[1])
part.create()
part.part.write_bytes(b"live frames")
print("locked", flush=True)
sys.stdin.read()  # holds the lock until the test closes stdin or kills it
"""


def test_a_second_job_on_the_same_output_is_refused_naming_the_first(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.odd_clips import encoded_clip

    root = Path(__file__).resolve().parents[2]
    clip = encoded_clip(tmp_path / "in.mp4", frames=12, options={"preset": "ultrafast"}, audio=None)
    out = tmp_path / "out.mp4"
    env = {**os.environ, "PYTHONPATH": str(root)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=root,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = subprocess.run(
            [sys.executable, "main.py", *video(clip, out)],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            timeout=300,
        )
        assert second.returncode == 2, second.stderr
        line = second.stderr.strip().splitlines()[-1]
        assert line == (
            f"error: {out} is being written by another job (pid {holder.pid}); wait for it to end or "
            "choose another output"
        )
        assert "Traceback" not in second.stderr and "left by an earlier" not in second.stderr
        assert out.with_name("out.mp4.part").read_bytes() == b"live frames" and not out.exists()
    finally:
        holder.send_signal(signal.SIGKILL)  # dies holding the lock: the kernel drops it
        holder.wait()
    third = subprocess.run(
        [sys.executable, "main.py", *video(clip, out)], capture_output=True, text=True, env=env, cwd=root, timeout=300
    )
    assert third.returncode == 0, third.stderr  # the dead job's .part is reused
    assert len(frame_times(out)) == 12 and not out.with_name("out.mp4.part").exists()


# ----- 3. a frame size change mid-stream: fitted to the first size with bars, one warning -----


def test_a_size_change_is_fitted_to_the_first_size_with_one_warning(tmp_path, capsys):
    from main import main
    from realtime.sources import VideoFileSource

    clip = size_change(tmp_path / "cut.ts", ((96, 64), (64, 64), (128, 64)), frames=8)
    source = VideoFileSource(clip)
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame.image)
    source.close()
    assert len(frames) == 24 and all(f.shape == (64, 96, 3) for f in frames) and source.resized == 16
    square = frames[12]  # 64x64 in 96x64: black bars of 16 px left and right, the picture between
    assert square[:, :16].max() == 0 and square[:, 80:].max() == 0 and square[:, 16:80].min() > 30
    wide = frames[20]  # 128x64 in 96x64: 96x48, bars of 8 px above and below
    assert wide[:8].max() == 0 and wide[56:].max() == 0 and wide[8:56].min() > 30
    out = tmp_path / "out.mp4"
    assert main(video(clip, out)) == 0
    err = capsys.readouterr().err
    assert err.count("changes its frame size") == 1 and "scaled to fit 96x64 with black bars" in err
    with av.open(str(out)) as container:
        assert [f.width * 1000 + f.height for f in container.decode(video=0)] == [96064] * 24


# ----- 7. the smaller defects -----


def test_a_variable_rate_file_gets_no_false_truncated_note(tmp_path, capsys):
    """Matroska says 25 fps for 30 frames spread over 7.9 s (a long still): 30 / 25 = 1.2 s is not where it ended."""
    from main import main

    clip = encoded_clip(
        tmp_path / "vfr.mkv", frames=30, options={"preset": "ultrafast"}, audio=None, durations=(40, 40, 40, 1000)
    )
    assert main(video(clip, tmp_path / "out.mp4")) == 0
    assert "truncated" not in capsys.readouterr().err
    times = frame_times(tmp_path / "out.mp4")
    assert len(times) == 30 and times[-1] - times[0] > 6.5


def test_crf_out_of_the_encoders_range_is_refused_in_one_line(tmp_path, capsys):
    from main import main

    clip = encoded_clip(tmp_path / "in.mp4", frames=4, audio=None)
    assert main(video(clip, tmp_path / "out.mp4", "--crf", "99")) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        line == "error: --crf 99 is out of range for libx264: use 0 (lossless) to 51 (lowest quality); 18 looks "
        "like the input"
    )
    assert not (tmp_path / "out.mp4.part").exists()


def test_avi_output_keeps_its_frames_in_order(tmp_path):
    """AVI stores no presentation times: x264's B-frames would play out of order (0.04, 0.16, 0.12 …)."""
    from realtime.video_writer import VideoFileWriter
    from tests.odd_clips import picture

    writer = VideoFileWriter(tmp_path / "out.avi", FPS)
    for i in range(30):
        writer.write(picture(i), i / FPS)
    writer.close()
    with av.open(str(tmp_path / "out.avi")) as container:
        frames = [(float(f.time), which_frame(f.to_ndarray(format="bgr24"))) for f in container.decode(video=0)]
    assert [i for _, i in frames] == list(range(30))
    assert np.allclose(np.diff([t for t, _ in frames]), 1 / FPS)


def test_a_missing_camera_prints_only_our_error(tmp_path):
    import subprocess
    import sys

    if Path("/dev/video7").exists():
        pytest.skip("this machine has a camera 7")
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "main.py", "webcam", "--camera", "7", "--no-window"],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot open camera 7; "), run.stderr  # no OpenCV lines


def _silent_server():
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    return server, f"rtsp://127.0.0.1:{server.getsockname()[1]}/live"


def test_a_stream_that_never_answers_gives_up_in_one_line(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    server, url = _silent_server()
    with server:
        run = subprocess.run(
            [sys.executable, "main.py", "webcam", "--camera", url, "--no-window"],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=300,
        )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: cannot open {url}: no answer within 10 s; check the URL and that the server is streaming"
    )


def test_sigterm_while_a_stream_connects_ends_it_at_once(tmp_path):
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    server, url = _silent_server()
    with server:
        job = subprocess.Popen(
            [sys.executable, "main.py", "webcam", "--camera", url, "--no-window"],
            stderr=subprocess.PIPE,
            text=True,
            cwd=root,
        )
        connection, _ = server.accept()  # it is inside OpenCV's open now, waiting for an answer that never comes
        job.send_signal(signal.SIGTERM)
        err = job.communicate(timeout=300)[1]
        connection.close()
    assert job.returncode == 130 and err.strip().splitlines()[-1] == "interrupted"


@pytest.mark.parametrize("channels", [2, 4])  # grey + alpha, BGRA
def test_transparency_is_flattened_onto_white_with_a_note(tmp_path, caplog, channels):
    from PIL import Image

    from core.images import read_image

    def save(path: Path, pixels: np.ndarray) -> None:  # OpenCV cannot write grey + alpha; Pillow can
        Image.fromarray(pixels, "LA" if channels == 2 else "RGBA").save(path)

    image = np.full((32, 32, channels), 60, np.uint8)
    image[..., -1] = 255
    image[:, :16, -1] = 0  # the left half is see-through
    save(tmp_path / "logo.png", image)
    with caplog.at_level("WARNING"):
        flat = read_image(tmp_path / "logo.png")
    assert flat.shape == (32, 32, 3) and (flat[:, :16] == 255).all() and (flat[:, 16:] == 60).all()
    assert "logo.png has transparent parts: they are flattened onto white" in caplog.text
    opaque = image.copy()
    opaque[..., -1] = 255
    save(tmp_path / "opaque.png", opaque)
    caplog.clear()
    with caplog.at_level("WARNING"):
        read_image(tmp_path / "opaque.png")
    assert "transparent" not in caplog.text  # no note where nothing is see-through


def test_a_transparent_image_sequence_is_noted_once_and_every_frame_flattened(tmp_path, caplog):
    from PIL import Image

    from realtime.sources import ImageSequenceSource

    for i in range(5):  # a logo animation: every frame has a see-through left half
        image = np.full((32, 32, 4), 60, np.uint8)
        image[:, : 8 + 2 * i, -1] = 0
        Image.fromarray(image, "RGBA").save(tmp_path / f"logo_{i:02d}.png")
    with caplog.at_level("WARNING"):
        source = ImageSequenceSource(tmp_path)
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame.image)
    assert len(frames) == 5 and all((f[:, : 8 + 2 * i] == 255).all() for i, f in enumerate(frames))
    assert caplog.text.count("transparent parts") == 1 and "(first: logo_00.png)" in caplog.text


def test_repair_leaves_a_variable_rate_burst_where_it_is():
    """A screen recording averaging 5 fps with a burst 16 ms apart keeps its times; stacked ones move a frame on."""
    from types import SimpleNamespace
    from fractions import Fraction

    from realtime.timestamps import BestEffortTimes

    pts = [0, 1000, 1016, 1033, 3000, 3000, 3000, 5000]  # ms; three frames at one time (a broken muxer)
    frames = [SimpleNamespace(pts=p, dts=None) for p in pts]
    times = [t for _, t in BestEffortTimes(frames, Fraction(1, 1000), period=0.2)]
    assert times == pytest.approx([0, 1.0, 1.016, 1.033, 3.0, 3.2, 3.4, 5.0])
