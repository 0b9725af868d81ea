"""FrameStylizer commands, the key map and temporal stability, on real frames with real MicroAST weights."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from models.registry import create_model
from models.styles import StyleCodeCache, StyleImage
from realtime.backends.torch_backend import TorchBackend
from realtime.controls import Action, apply_to_stylizer, binding_for, binding_for_code
from realtime.sources import VideoFileSource
from realtime.temporal.hold import HoldStage
from realtime.stylizer import FrameStylizer, StylizerParams


@pytest.fixture(scope="module")
def frames(video_path) -> list[np.ndarray]:
    source = VideoFileSource(video_path)
    out = [source.read().image[::3, ::3].copy() for _ in range(6)]  # 214x120: small and fast
    source.close()
    return out


@pytest.fixture(scope="module")
def stylizer_parts(shared):
    model = create_model("microast")
    styles = [
        StyleImage.load(shared / "images" / "styles" / n) for n in ("starry_night.jpg", "candy.jpg", "mosaic.jpg")
    ]
    return model, styles, StyleCodeCache()  # one cache: each style is encoded once for the module


def make(parts, **params) -> FrameStylizer:
    model, styles, cache = parts
    return FrameStylizer(TorchBackend(model), styles, StylizerParams(**params), cache=cache, style_size=128)


def test_style_switch_takes_effect_on_the_next_frame(frames, stylizer_parts):
    st = make(stylizer_parts)
    first = st.process(frames[0])
    st.select_style(1)
    assert st.state.style == "starry_night"  # queued, not applied mid-way
    second = st.process(frames[0])
    assert st.state.style == "candy"
    expected = st.backend.run(frames[0], st.cache.get(st.backend.model, stylizer_parts[1][1], 128))
    np.testing.assert_array_equal(second, expected)
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 10
    cached = len(st.cache)
    st.next_style()
    st.next_style()  # wraps around to the first style
    np.testing.assert_array_equal(st.process(frames[0]), first)
    assert len(st.cache) == cached  # switching back re-used the cached code


def test_commands_change_output_and_bad_values_are_refused(frames, stylizer_parts):
    st = make(stylizer_parts, size=60)
    out = st.process(frames[1])
    assert out.shape == frames[1].shape  # processed small, scaled back to the frame size
    st.toggle_bypass()
    np.testing.assert_array_equal(st.process(frames[1]), frames[1])
    st.toggle_bypass()
    st.set_alpha(0.0)
    weak = st.process(frames[1])
    assert np.abs(weak.astype(int) - frames[1].astype(int)).mean() < np.abs(out.astype(int) - frames[1]).mean()
    st.set_alpha(1.0)
    st.set_blend(1, 0.5)
    blended = st.process(frames[1])
    assert st.state.blend_style == "candy" and not np.array_equal(blended, out)
    st.toggle_preserve_color()
    assert st.process(frames[1]).shape == frames[1].shape and st.state.params.preserve_color
    with pytest.raises(InputError, match="alpha"):
        st.set_alpha(1.5)
    with pytest.raises(InputError, match="stability"):
        st.set_stability(-0.1)
    st.select_style(7)  # out of range: reported in the state, the stream goes on
    st.process(frames[1])
    assert "does not exist" in st.state.last_error and st.state.style == "starry_night"


def test_add_style_appends_and_selects(frames, stylizer_parts, shared):
    st = make(stylizer_parts)
    st.add_style(shared / "images" / "styles" / "the_scream.jpg")
    st.process(frames[2])
    assert st.state.style == "the_scream" and len(st.state.styles) == 4


def test_key_map_drives_the_stylizer(frames, stylizer_parts):
    st = make(stylizer_parts)
    assert binding_for("2").action is Action.SELECT_STYLE and binding_for("2").arg == 1
    assert binding_for_code(ord("q")).action is Action.QUIT and binding_for_code(27).action is Action.QUIT
    assert binding_for_code(-1) is None
    # Arrow keys arrive as X11 keysyms (OpenCV GTK and Qt on Linux): Left 0xff51, Up 0xff52, Right 0xff53.
    assert all(binding_for_code(code) is None for code in (0xFF51, 0xFF52, 0xFF53, 0x250000))
    assert binding_for_code(ord("+") | 1 << 16).action is Action.ALPHA_UP  # GTK: shift state in the high bits
    assert apply_to_stylizer(binding_for("3"), st)
    assert apply_to_stylizer(binding_for("-"), st)
    assert not apply_to_stylizer(binding_for("s"), st)  # snapshots belong to the front end
    st.process(frames[0])
    assert st.state.style == "mosaic" and st.state.params.alpha == pytest.approx(0.9)


def test_stability_reduces_flicker_on_a_static_noisy_scene(frames):
    rng = np.random.default_rng(0)
    base = frames[0].astype(np.int16)
    inputs = [np.clip(base + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8) for _ in range(8)]
    # A stand-in for a flickering style net: the output jumps although the input barely moves.
    outputs = [np.clip(base[..., ::-1] + rng.integers(-40, 41, base.shape), 0, 255).astype(np.uint8) for _ in inputs]

    def flicker(strength: float) -> float:
        stab = HoldStage(strength)
        res = [stab.apply(i, o).astype(int) for i, o in zip(inputs, outputs)]
        return float(np.mean([np.abs(a - b).mean() for a, b in zip(res, res[1:])]))

    assert flicker(0.0) > 20
    assert flicker(0.8) < 0.5 * flicker(0.0)
    # A scene cut resets: the new shot's output passes through untouched.
    stab = HoldStage(0.9)
    stab.apply(inputs[0], outputs[0])
    cut_in, cut_out = 255 - inputs[1], outputs[1]
    np.testing.assert_array_equal(stab.apply(cut_in, cut_out), cut_out)
    assert stab.cuts == 1


RESET_COMMANDS = {
    "alpha": (lambda st: st.set_alpha(0.5), {"alpha": 0.5}),
    "colour": (lambda st: st.set_preserve_color(True), {"preserve_color": True}),
    "style": (lambda st: st.select_style(1), {"style_index": 1}),
    "blend": (lambda st: st.set_blend(2, 0.5), {"blend_index": 2, "mix": 0.5}),
    "size": (lambda st: st.set_size(60), {"size": 60}),
}


@pytest.mark.parametrize("what", sorted(RESET_COMMANDS))
def test_a_change_of_look_shows_at_once_in_still_regions(frames, stylizer_parts, what):
    """At stability 1 a still scene holds its output forever, so a new look must reset the held frames."""
    command, changed = RESET_COMMANDS[what]
    still = frames[2]
    st = make(stylizer_parts, temporal="hold", stability=1.0)
    held = st.process(still)
    np.testing.assert_array_equal(st.process(still), held)  # nothing moves: the output is held
    command(st)
    after = st.process(still)
    fresh = make(stylizer_parts, temporal="hold", stability=1.0, **changed).process(still)
    np.testing.assert_array_equal(after, fresh)  # exactly the new look, nothing of the old one
    assert np.abs(after.astype(int) - held.astype(int)).mean() > 1


def test_a_backend_switch_and_a_reopened_source_reset_the_temporal_stage(frames, stylizer_parts):
    model, styles, cache = stylizer_parts
    st = make(stylizer_parts, temporal="hold", stability=1.0)
    st.process(frames[0])
    held = st.process(frames[1])  # frame 1 partly holds frame 0's output
    fresh = make(stylizer_parts, temporal="hold", stability=1.0).process(frames[1])
    assert not np.array_equal(held, fresh)
    st.set_backend(TorchBackend(model))
    np.testing.assert_array_equal(st.process(frames[1]), fresh)
    st.process(frames[0])
    st.reset_temporal()  # what the pipeline does when a looping source starts again
    np.testing.assert_array_equal(st.process(frames[1]), fresh)


def test_temporal_mode_switch_and_unknown_mode(frames, stylizer_parts):
    st = make(stylizer_parts)
    off = st.process(frames[3])
    st.set_temporal("hold", 0.8)
    st.process(frames[3])
    assert (st.state.params.temporal, st.state.params.stability) == ("hold", 0.8)
    assert "hold 0.80" in st.state.describe()
    st.set_temporal("off")
    np.testing.assert_array_equal(st.process(frames[3]), off)
    with pytest.raises(InputError, match="unknown temporal mode 'blur'"):
        st.set_temporal("blur")


def test_size_governor_steps_down_when_slow_and_up_when_fast_with_hysteresis():
    from realtime.adaptive import SizeGovernor

    gov = SizeGovernor(target_fps=4.0, settle_s=2.0)
    assert gov.observe(0.0, 0, 480, 480) is None  # starts measuring
    assert gov.observe(1.0, 1, 480, 480) is None  # too early to judge
    assert gov.observe(2.0, 4, 480, 480) == 360  # 2 fps for a target of 4: smaller
    assert gov.observe(3.0, 8, 360, 480) is None  # settling
    assert gov.observe(4.0, 15, 360, 480) is None  # 3.75 fps: within the band, stays
    assert gov.observe(6.0, 35, 360, 480) == 480  # 10 fps: 480 would still give ~5.6 ≥ 1.2 × 4
    assert gov.observe(8.0, 45, 480, 480) is None  # no size above the frame's own


def test_auto_size_jumps_after_the_first_second_then_steps_down_under_load_and_up_with_room():
    from realtime.adaptive import AutoSize

    gov = AutoSize(min_keyframes=8.0, max_busy=0.8, first_s=1.0, settle_s=2.0)
    assert gov.start_size(480) == 360 and gov.start_size(200) == 200
    assert gov.observe(0.0, 0, 360, 480) is None  # starts measuring
    for i in range(1, 30):  # 30 frames at 5 ms of work each
        assert gov.observe(i / 30, i // 2, 360, 480, 0.005) is None  # within the first second
    # 1 s at 360: 15 keyframes/s, frame work 15 % of the time. 480 (1.78× the pixels) predicts 8.4/s, short
    # of the 8 × 1.15 a step up needs; 360 still keeps both figures: stays, and says why.
    assert gov.observe(1.0, 15, 360, 480, 0.005) is None
    assert gov.reason.startswith("auto 360 px: keyframes 15.0/s") and "480 px would not keep up" in gov.reason
    # load rises: 6 keyframes/s is under 8, so the next choice steps down (240: 13.5/s predicted)
    assert gov.observe(3.0, 27, 360, 480, 0.01) == 240
    assert "from 360" in gov.reason
    # at 240 frame work takes 90 % of the time: frames would drop, and 160 is the only size left
    assert gov.observe(5.0, 60, 240, 480, 1.8) == 160
    # the load is gone: 40 keyframes/s and 10 % busy at 160 predict 17.8/s and 23 % at 240: one step up
    assert gov.observe(7.0, 140, 160, 480, 0.2) == 240


def test_live_look_change_fades_in_over_the_last_frame_shown_with_the_stage_reset(frames, stylizer_parts):
    st = make(stylizer_parts, temporal="flow")
    st.set_live(True)
    before = [st.process(f) for f in frames[:3]]
    st.select_style(1)
    first = st.process(frames[3])
    fresh = st.backend.run(frames[3], st.cache.get(st.backend.model, stylizer_parts[1][1], 128))
    # the first frame of the new look is 10 % new style, 90 % the frame shown last (the fade's first step)
    blend = 0.1 * fresh.astype(np.float32) + 0.9 * before[-1].astype(np.float32)
    assert np.abs(first.astype(np.float32) - blend).max() <= 1.0
    assert np.abs(first.astype(int) - fresh.astype(int)).mean() > 10  # no cut to the new look
    assert st.keyframe_stats.frames >= 2  # the reset stage stylised the new look's first frame at once
    st.close()


def test_backend_switch_waits_for_a_live_keyframe_running_on_the_old_backend(frames, stylizer_parts):
    import threading

    model = stylizer_parts[0]
    running, release, closed_while_running = threading.Event(), threading.Event(), []

    class Watched(TorchBackend):
        busy = False
        calls = 0

        def run(self, frame, code, alpha=1.0):
            self.busy = True
            self.calls += 1
            if self.calls > 1:  # the keyframe thread's run: held until the test lets it go
                running.set()
                assert release.wait(120)
            out = super().run(frame, code, alpha)
            self.busy = False
            return out

        def close(self):
            closed_while_running.append(self.busy)
            super().close()

    st = FrameStylizer(
        Watched(model), stylizer_parts[1], StylizerParams(temporal="flow"), cache=stylizer_parts[2], style_size=128
    )
    st.set_live(True)
    st.process(frames[0])  # stylised at once
    st.process(frames[1])  # the next keyframe starts on the old backend, in the keyframe thread
    assert running.wait(120)
    st.set_backend(TorchBackend(model))
    # the next frame applies the switch: it waits for that keyframe, then closes the old backend
    switch = threading.Thread(target=st.process, args=(frames[2],))
    switch.start()
    switch.join(0.2)
    assert switch.is_alive() and closed_while_running == []  # still waiting on the keyframe in flight
    release.set()
    switch.join(120)
    assert not switch.is_alive() and closed_while_running == [False]
    st.close()
