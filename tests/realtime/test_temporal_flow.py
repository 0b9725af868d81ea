"""The flow stage: flow/warp/mask on synthetic shifts with known answers, a panned photo with real MicroAST
weights (textures stick, style stays), scene cuts, and live keyframe propagation on a paced clip."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
import torch

from models.gatys import gram_matrix
from core.images import to_tensor
from models.registry import create_model
from models.styles import StyleCodeCache, StyleImage
from models.vgg import VGG19Features
from realtime.backends.torch_backend import TorchBackend
from realtime.pipeline import Pipeline
from realtime.sources import VideoFileSource
from realtime.stylizer import FrameStylizer, StylizerParams
from realtime.temporal.flow import FlowStage
from realtime.temporal.optical_flow import FlowEstimator, consistent, identity_map, sample, to_grey

W, H, PAN = 240, 180, 1.7  # px per frame: a non-integer pan


@pytest.fixture(scope="module")
def photo(content_path) -> np.ndarray:
    return cv2.resize(cv2.imread(str(content_path)), (480, 320), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def pan(photo) -> list[np.ndarray]:
    """A slow horizontal pan over the photo, by sub-pixel shifts."""
    return [
        cv2.warpAffine(photo, np.float32([[1, 0, -PAN * i], [0, 1, -40]]), (W, H), flags=cv2.INTER_LINEAR)
        for i in range(24)
    ]


@pytest.fixture(scope="module")
def parts(shared):
    model = create_model("microast")
    styles = [StyleImage.load(shared / "images" / "styles" / n) for n in ("starry_night.jpg", "candy.jpg")]
    return model, styles, StyleCodeCache()


def make(parts, **params) -> FrameStylizer:
    model, styles, cache = parts
    return FrameStylizer(TorchBackend(model), styles, StylizerParams(**params), cache=cache, style_size=160)


def warping_error(outputs: list[np.ndarray], inputs: list[np.ndarray]) -> float:
    """Lai et al.'s warping error: output t vs output t−1 warped along the input's flow, occlusions masked."""
    flow = FlowEstimator("medium")
    errors = []
    for t in range(1, len(inputs)):
        a, b = to_grey(inputs[t]), to_grey(inputs[t - 1])
        backward, forward = flow(a, b), flow(b, a)
        positions = identity_map(*a.shape) + backward
        keep = consistent(backward, forward, positions)
        keep[:, -4:] = False  # what entered the frame has no earlier frame to be compared with
        warped = sample(outputs[t - 1], positions).astype(np.float32) / 255
        errors.append(float(np.square(outputs[t].astype(np.float32) / 255 - warped).sum(-1)[keep].mean()))
    return float(np.mean(errors))


def style_loss(images: list[np.ndarray], style: np.ndarray) -> float:
    """Gram-matrix style loss on VGG-19 relu1_1..relu3_1 (the Gatys layers up to the third block)."""
    taps = ("relu1_1", "relu2_1", "relu3_1")
    vgg = VGG19Features("relu3_1")
    with torch.inference_mode():
        target = vgg(to_tensor(style), taps)
        losses = []
        for image in images:
            feats = vgg(to_tensor(image), taps)
            losses.append(sum(float(torch.square(gram_matrix(feats[k]) - gram_matrix(target[k])).sum()) for k in taps))
    return float(np.mean(losses))


def test_flow_of_a_known_shift_warps_back_and_masks_what_is_occluded(photo):
    shift = (2.3, -1.4)
    a = photo[40 : 40 + H, 60 : 60 + W]
    b = cv2.warpAffine(photo, np.float32([[1, 0, -60 + shift[0]], [0, 1, -40 + shift[1]]]), (W, H))  # b(x) = a(x - s)
    flow = FlowEstimator("fast")
    backward = flow(to_grey(b), to_grey(a))  # b(x) ≈ a(x + F)
    inner = (slice(20, -20), slice(20, -20))
    np.testing.assert_allclose(np.median(backward[inner].reshape(-1, 2), axis=0), [-shift[0], -shift[1]], atol=0.25)
    positions = identity_map(H, W) + backward
    assert np.abs(sample(a, positions)[inner].astype(int) - b[inner].astype(int)).mean() < 3
    assert consistent(backward, flow(to_grey(a), to_grey(b)), positions)[inner].mean() > 0.85
    # A patch that appears in b only (an occluder) breaks the forward–backward check there.
    occluded = b.copy()
    occluded[60:110, 90:150] = np.roll(photo, 97, axis=(0, 1))[60:110, 90:150]
    bwd = flow(to_grey(occluded), to_grey(a))
    ok = consistent(bwd, flow(to_grey(a), to_grey(occluded)), identity_map(H, W) + bwd)
    assert ok[70:100, 100:140].mean() < 0.5 < ok[inner].mean()


def test_flow_makes_a_pan_stick_while_the_style_stays(pan, parts):
    outputs = {}
    for mode in ("off", "flow"):
        st = make(parts, temporal=mode)
        outputs[mode] = [st.process(f) for f in pan]
    off, flow = warping_error(outputs["off"], pan), warping_error(outputs["flow"], pan)
    assert flow < off / 5, (flow, off)
    style = parts[1][0].bgr
    sampled = slice(4, None, 6)
    ratio = style_loss(outputs["flow"][sampled], style) / style_loss(outputs["off"][sampled], style)
    assert ratio < 1.25, ratio


def test_scene_cut_resets_the_carried_texture(pan, parts, photo):
    stage = FlowStage(1.0)
    st = make(parts, temporal="off")
    infer = st._inference(st.backend, st._current_code(), 1.0)
    for frame in pan[:4]:
        stage.step(frame, infer)
    other = cv2.resize(np.ascontiguousarray(photo[::-1, ::-1]), (W, H))  # another shot
    out = stage.step(other, infer)
    assert stage.cuts == 1
    np.testing.assert_array_equal(out, infer(other))  # nothing of the old shot is carried over


class ShownPacedSource(VideoFileSource):
    """A file played as a camera (live semantics: newest-frame queues, the live stage) whose next frame comes once
    the one before is shown: a camera the machine keeps up with, however busy it is, so no frame is late."""

    live = True

    def __init__(self, path, shown: threading.Event) -> None:
        super().__init__(path)
        self.shown, self.sent = shown, False

    def read(self):
        if self.sent and not self.shown.wait(120):
            raise AssertionError("the frame before was not shown within two minutes")
        self.shown.clear()
        self.sent = True
        return super().read()


def test_live_flow_shows_every_frame_stylised_and_survives_a_style_switch(tmp_path, parts, write_clip):
    clip = write_clip(tmp_path / "clip.mp4", frames=72, fps=24, size=(256, 192), audio_rate=None)
    st = make(parts, temporal="flow", size=192)
    shown: list[tuple[int, np.ndarray, np.ndarray]] = []
    was_shown = threading.Event()

    def on_frame(frame, image) -> None:
        shown.append((frame.index, frame.image, image))
        if frame.index == 30:
            st.select_style(1)
        was_shown.set()

    result = Pipeline(ShownPacedSource(clip, was_shown), st, on_frame=on_frame).run()
    assert result.reason == "end of input"
    indices = [i for i, _, _ in shown]
    assert indices == list(range(72))  # every frame, in order: the live stage never holds one back
    for _, raw, out in shown:
        assert np.abs(out.astype(int) - raw.astype(int)).mean() > 15  # stylised, never the raw frame
    assert st.state.style == "candy"
    assert 2 <= st.keyframe_stats.frames < len(shown)  # propagated between keyframes


def test_live_stage_close_waits_for_the_keyframe_in_flight(pan):
    from realtime.temporal.live import LiveFlowStage

    running, release = threading.Event(), threading.Event()
    finished = []

    def slow(frame):
        if finished:  # the keyframe thread's run: held until the test lets it go
            running.set()
            assert release.wait(120)
        finished.append(True)
        return frame

    stage = LiveFlowStage()
    stage.step(pan[0], slow)  # the first frame is stylised at once
    stage.step(pan[1], slow)  # the next keyframe starts in the keyframe thread
    assert running.wait(120)
    closer = threading.Thread(target=stage.close)  # returns only when that run is over: its backend may be closed next
    closer.start()
    closer.join(0.2)
    assert closer.is_alive() and len(finished) == 1  # still waiting on the run in flight
    release.set()
    closer.join(120)
    assert not closer.is_alive() and len(finished) == 2
