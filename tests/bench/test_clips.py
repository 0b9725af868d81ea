"""The generated benchmark clips: deterministic, the motion they claim, and readable back."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench.clips import make_pan_clip, pan_frames, walker_frames
from bench.metrics import FlowEstimator


@pytest.fixture(scope="module")
def photo(content_path):
    return cv2.imread(str(content_path))


def test_pan_moves_by_the_asked_subpixel_step(photo):
    frames = list(pan_frames(photo, 4, 320, 240, speed=1.7))
    assert all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for f in frames)
    flow = FlowEstimator().flow(frames[3], frames[2])  # the scene moves left: frame 3(x) ≈ frame 2(x + 1.7)
    assert np.median(flow[10:-10, 10:-10, 0]) == pytest.approx(1.7, abs=0.1)
    assert np.abs(np.median(flow[10:-10, 10:-10, 1])) < 0.1
    again = list(pan_frames(photo, 4, 320, 240, speed=1.7))
    assert all(np.array_equal(a, b) for a, b in zip(frames, again))


def test_walkers_move_over_a_still_background(photo, shared):
    texture = cv2.imread(str(shared / "images" / "content" / "astronaut.jpg"))
    frames = list(walker_frames(photo, texture, 6, 320, 240, walkers=3, seed=1))
    assert list(walker_frames(photo, texture, 6, 320, 240, walkers=3, seed=1))[5].tobytes() == frames[5].tobytes()
    moved = np.abs(frames[5].astype(np.int16) - frames[4]).max(-1) > 8
    assert 0.01 < moved.mean() < 0.4  # figures moved; most of the frame is the still background
    flow = FlowEstimator().flow(frames[5], frames[4])
    speed = np.hypot(flow[..., 0], flow[..., 1])
    assert np.median(speed[~moved]) < 0.2
    assert np.percentile(speed[moved], 75) > 1.0


def test_clip_is_written_and_read_back(tmp_path):
    from realtime.sources import VideoFileSource

    path = make_pan_clip(tmp_path / "pan.mp4", frames=5, width=160, height=120, fps=30)
    source = VideoFileSource(path)
    frames = []
    while (f := source.read()) is not None:
        frames.append(f.image)
    source.close()
    assert len(frames) == 5 and frames[0].shape == (120, 160, 3) and source.fps == pytest.approx(30)


def test_handheld_clip_drifts_and_jitters_with_noise(photo):
    from bench.clips import handheld_frames

    frames = list(handheld_frames(photo, 8, 320, 240, seed=2))
    assert list(handheld_frames(photo, 8, 320, 240, seed=2))[7].tobytes() == frames[7].tobytes()
    flow = FlowEstimator()
    steps = [np.median(flow.flow(frames[i + 1], frames[i])[20:-20, 20:-20].reshape(-1, 2), axis=0) for i in range(7)]
    speeds = np.hypot(*np.array(steps).T)
    assert speeds.mean() > 0.8  # the camera moves on every frame ...
    assert speeds.std() > 0.2  # ... unevenly: a hand, not a dolly
    assert np.abs(frames[1].astype(np.int16) - frames[0]).mean() > 2


def test_street_clip_is_a_still_real_background_with_people_crossing_compressed(tmp_path):
    from bench.clips import make_street_clip
    from realtime.sources import VideoFileSource

    path = make_street_clip(tmp_path / "street.mp4", frames=6, width=320, height=240, fps=30)
    source = VideoFileSource(path)
    frames = []
    while (f := source.read()) is not None:
        frames.append(f.image)
    source.close()
    assert len(frames) == 6
    moved = np.abs(frames[5].astype(np.int16) - frames[4]).max(-1) > 20
    assert 0.01 < moved.mean() < 0.4  # people moved; most of the frame is the still (noisy) background
    speed = np.hypot(*FlowEstimator().flow(frames[5], frames[4]).transpose(2, 0, 1))
    assert np.median(speed) < 0.3 and np.percentile(speed[moved], 75) > 1.5
