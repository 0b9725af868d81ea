"""One temporal stage for both kinds of camera: on a still camera with figures walking through it the still
background is held pixel for pixel (files and live) while the figures are tracked; on a moving camera nothing is
held. Real MicroAST weights, clips composed from the shared photos (bench.clips) with seeded sensor noise."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench.clips import add_noise, content_photo, cover, pan_frames, walker_frames
from bench.metrics import StyleLosses, warping_error
from models.registry import create_model
from models.styles import StyleCodeCache, StyleImage
from realtime.backends.torch_backend import TorchBackend
from realtime.stylizer import FrameStylizer, StylizerParams
from realtime.temporal.flow import FlowStage
from realtime.temporal.hold import HoldStage
from realtime.temporal.live import LiveFlowStage
from realtime.temporal.optical_flow import FlowEstimator, to_grey

W, H, N = 256, 192, 16


@pytest.fixture(scope="module")
def street() -> tuple[list[np.ndarray], np.ndarray]:
    """A still camera on a real photo with two figures (cut from a real portrait) walking, sensor noise σ 2;
    and the pixels no figure comes near in the whole clip (the background, 12 px clear of every figure)."""
    background, person = content_photo("hoovertowernight"), content_photo("astronaut")
    clean = list(walker_frames(background, person, N, W, H, walkers=2, seed=3, speeds=(3.0, 5.0)))
    rng = np.random.default_rng(7)
    frames = [add_noise(f, 2.0, rng) for f in clean]
    empty = cover(background, W, H).astype(np.int16)
    touched = np.zeros((H, W), np.uint8)
    for f in clean:
        touched |= (np.abs(f.astype(np.int16) - empty).max(-1) > 0).view(np.uint8)
    untouched = cv2.erode(1 - touched, np.ones((25, 25), np.uint8)) > 0
    untouched[:2], untouched[-2:], untouched[:, :2], untouched[:, -2:] = False, False, False, False
    assert 0.2 < untouched.mean() < 0.9  # the figures cross part of the frame, not all of it
    return frames, untouched


@pytest.fixture(scope="module")
def infer(shared):
    """Real MicroAST (starry_night) at the clips' size, each frame's result computed once and shared by the stages."""
    style = StyleImage.load(shared / "images" / "styles" / "starry_night.jpg")
    st = FrameStylizer(TorchBackend(create_model("microast")), [style], StylizerParams(), cache=StyleCodeCache())
    run = st._inference(st.backend, st._current_code(), 1.0)
    done: dict[int, np.ndarray] = {}

    def cached(frame: np.ndarray) -> np.ndarray:
        key = hash(frame.tobytes())
        if key not in done:
            done[key] = run(frame)
        return done[key]

    yield cached
    st.close()


def test_still_camera_flow_is_zero_off_the_walkers_and_a_pan_is_tracked(street, shared):
    frames, untouched = street
    estimator = FlowEstimator("medium", 0.5)
    for t in range(1, N):
        backward, forward = estimator.both(to_grey(frames[t]), to_grey(frames[t - 1]))
        assert estimator.still.camera_still
        assert not backward[untouched].any() and not forward[untouched].any()  # exactly zero: nothing swims
        assert 0.02 < estimator.moving.mean() < 0.6  # the figures move, the rest does not
    pan = list(pan_frames(content_photo("chicago"), 4, W, H))
    estimator.reset()
    for t in range(1, 4):
        backward, _ = estimator.both(to_grey(pan[t]), to_grey(pan[t - 1]))
        assert not estimator.still.camera_still
        np.testing.assert_allclose(np.median(backward[16:-16, 16:-16, 0]), 1.7, atol=0.3)  # the scene moves left


def test_files_hold_a_still_background_exactly_and_steady_the_walkers(street, infer, shared):
    frames, untouched = street
    outputs: dict[str, list[np.ndarray]] = {"off": [infer(f) for f in frames]}
    for name, stage in (("hold", HoldStage(0.6)), ("flow", FlowStage(0.85))):
        outputs[name] = [stage.step(f, infer) for f in frames]
    for out in outputs["flow"][1:]:  # the background shows the first stylisation, pixel for pixel
        np.testing.assert_array_equal(out[untouched], outputs["flow"][0][untouched])
    error = {name: warping_error(frames, outs)["output"] for name, outs in outputs.items()}
    assert error["flow"] < min(error["hold"], 0.5 * error["off"]), error
    losses = StyleLosses(cv2.imread(str(shared / "images" / "styles" / "starry_night.jpg")), size=192)
    style = {name: np.mean([losses(outs[t], frames[t])[1] for t in (5, 10, 15)]) for name, outs in outputs.items()}
    assert style["flow"] < 1.25 * style["off"], style


def test_live_holds_a_still_background_while_keyframes_keep_arriving(street, infer):
    frames, untouched = street
    shown: dict[bool, list[np.ndarray]] = {}
    for hold_still in (True, False):
        stage = LiveFlowStage(0.85, hold_still=hold_still)
        shown[hold_still] = []
        for frame in frames:
            shown[hold_still].append(stage.step(frame, infer))
            stage.quiesce()  # the keyframe sent off with this frame is ready for the next one
        assert stage.keyframes >= N - 2  # one per frame: every frame was stylised too
        stage.close()
    for out in shown[True][1:]:
        np.testing.assert_array_equal(out[untouched], shown[True][0][untouched])
    changed = [not np.array_equal(out[untouched], shown[False][0][untouched]) for out in shown[False][1:]]
    assert sum(changed) > N // 2  # without holding, every keyframe re-rolls the background's strokes
