"""The video writer and source on inputs other than 48 kHz, even-sized, upright H.264: odd sides, WebM, rotation."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

FRAMES, FPS = 12, 24


@pytest.fixture()
def make_clip(write_clip):
    """A short lossless moving pattern of any size with an AAC tone at ``audio_rate``."""
    return lambda path, size, audio_rate: write_clip(
        path, frames=FRAMES, fps=FPS, size=size, audio_rate=audio_rate, codec="ffv1", pix_fmt="yuv444p"
    )


def frames_and_audio(path: Path) -> tuple[int, tuple[int, int], float]:
    """Decoded frame count, frame size and audio end time (s) of a file."""
    with av.open(str(path)) as c:
        frames = [f for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        end = max(float((p.pts + p.duration) * p.time_base) for p in c.demux(a) if p.size)
    return len(frames), (frames[0].width, frames[0].height), end


@pytest.mark.parametrize(
    "size, rate, suffix, expect",
    [
        ((97, 71), 48000, ".mp4", (96, 70)),  # odd sides: yuv420p H.264 needs even ones
        ((96, 64), 44100, ".webm", (96, 64)),  # AAC at 44.1 kHz re-encoded to Opus, which takes 48 kHz
    ],
)
def test_video_cli_writes_odd_sizes_and_reencodes_audio(tmp_path, make_clip, size, rate, suffix, expect):
    from main import main

    clip = make_clip(tmp_path / "in.mkv", size, rate)
    out = tmp_path / f"out{suffix}"
    assert main(["video", str(clip), "-o", str(out), "--style", "starry_night", "--style-size", "64"]) == 0
    frames, got, audio_end = frames_and_audio(out)
    assert frames == FRAMES
    assert got == expect
    assert audio_end == pytest.approx(FRAMES / FPS, abs=0.05)


@pytest.mark.parametrize("suffix, codec", [(".webm", None), (".mp4", "h264")])
def test_crf_reaches_the_encoder_named_by_its_short_name(tmp_path, suffix, codec):
    from realtime.video_writer import VideoFileWriter, VideoOptions

    yy, xx = np.mgrid[0:64, 0:96]
    sizes = []
    for crf in (4, 50):
        writer = VideoFileWriter(tmp_path / f"crf{crf}{suffix}", FPS, VideoOptions(codec=codec, crf=crf))
        for i in range(FRAMES):
            image = np.stack([(xx * 7 + i * 13) % 256, (yy * 5) % 256, (xx * yy + i) % 256], -1).astype(np.uint8)
            writer.write(image, i / FPS)
        writer.close()
        sizes.append((tmp_path / f"crf{crf}{suffix}").stat().st_size)
    assert sizes[0] > 2 * sizes[1]  # lower crf, much better quality, much larger file


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_rotated_phone_video_is_read_upright(tmp_path, degrees, write_rotated_clip):
    from realtime.sources import VideoFileSource

    shown = write_rotated_clip(path := tmp_path / "rotated.mp4", degrees)
    with VideoFileSource(path) as source:
        assert source.size == (shown.shape[1], shown.shape[0])
        image = source.read().image
    assert image.shape == shown.shape
    assert np.abs(image.astype(int) - shown.astype(int)).mean() < 8


def test_bad_codec_or_preset_is_named_in_a_one_line_error(tmp_path, capsys, make_clip):
    from main import main

    clip = make_clip(tmp_path / "in.mkv", (64, 48), 48000)  # with audio: the first mux is an audio packet
    assert main(["video", str(clip), "-o", str(tmp_path / "a.mp4"), "--codec", "nosuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: unknown video codec 'nosuch'")
    assert main(["video", str(clip), "-o", str(tmp_path / "b.mp4"), "--preset", "nosuch", "--style-size", "64"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert err == [
        "error: --preset 'nosuch' is not a libx264 preset; use one of ultrafast, superfast, veryfast, "
        "faster, fast, medium, slow, slower, veryslow, placebo"
    ]
    assert "microast" not in captured.out  # refused before the model was loaded, not at frame 0
    assert list(tmp_path.iterdir()) == [clip]  # neither b.mp4 nor b.mp4.part


def test_video_named_like_a_pattern_opens_as_video(tmp_path, make_clip):
    from realtime.sources import open_source

    clip = make_clip(tmp_path / "holiday [1080p] 100%.mkv", (64, 48), 48000)  # brackets: not a glob here
    with open_source(clip, as_camera=True) as source:
        assert source.live and source.size == (64, 48)
        assert source.read().image.shape == (48, 64, 3)


def test_image_folder_as_camera_is_paced_and_live(shared):
    import threading
    import time

    from realtime.sources import open_source

    stop = threading.Event()
    with open_source(shared / "images" / "content", as_camera=True, fps=50, stop=stop) as source:
        assert source.live
        start = time.perf_counter()
        frames = list(iter(source.read, None))
        took = time.perf_counter() - start
    assert len(frames) == 10 and [f.index for f in frames] == list(range(10))
    assert took >= 9 / 50 - 0.01  # at the asked rate, not as fast as the disk reads
    stop.set()
    with open_source(shared / "images" / "content", as_camera=True, fps=1 / 3600, stop=stop) as source:
        start = time.perf_counter()
        assert source.read() is not None and source.read() is None  # a stop wakes the hour's wait at once
        assert time.perf_counter() - start < 60  # (not waited out: the test would time out first)
