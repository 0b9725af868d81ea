"""``bench temporal`` / ``bench live`` plumbing: the measurement loop on a tiny clip, figures, and bad input."""

from __future__ import annotations

import math

import cv2
import pytest

from bench.clips import pan_frames
from bench.metrics import StyleLosses
from bench.temporal import ModeResult, available_modes, figure_checks, measure_clip
from main import main


@pytest.fixture(scope="module")
def model():
    from models.registry import create_model

    return create_model("microast").eval()


def test_measure_clip_with_identity_backend(model, content_path, style_path):
    from bench.pipeline import IdentityBackend
    from models.styles import StyleImage
    from realtime.stylizer import FrameStylizer, StylizerParams

    style = StyleImage.load(style_path)
    frames = list(pan_frames(cv2.imread(str(content_path)), 14, 160, 120, speed=1.7))
    stylizers = {m: FrameStylizer(IdentityBackend(model), [style], StylizerParams(temporal=m)) for m in ("off", "hold")}
    results = measure_clip(frames, stylizers, StyleLosses(style.bgr, size=64, style_size=128), loss_every=5)
    off, inp = results["off"], results["input"]
    assert off.warp == pytest.approx(inp.warp) and off.ratios["warp_vs_input"] == pytest.approx(1.0)
    assert math.isfinite(off.warp_long) and off.warp_long == pytest.approx(inp.warp_long)
    assert off.keyframes == 14 and off.frames == 14  # every frame ran the (identity) network
    assert results["hold"].ratios["style_vs_off"] > 0 and off.ms_median > 0
    assert figure_checks("pan", results) == ["(no flow mode in this build: figures not checked)"]


def test_figure_checks_say_met_and_not_met():
    def result(mode, warp, style, ms):
        r = ModeResult(mode, warp=warp, style=style, ms_median=ms)
        return r

    results = {
        "input": result("input", 1e-4, 0, 0),
        "off": result("off", 1e-2, 1.0, 10),
        "flow": result("flow", 1e-3, 1.1, 15),
    }
    for r in results.values():
        r.ratios = {
            "warp_vs_off": r.warp / 1e-2,
            "warp_vs_input": r.warp / 1e-4,
            "style_vs_off": r.style / 1.0,
            "time_vs_off": r.ms_median / 10,
        }
    pan = figure_checks("pan", results)
    assert pan[0].endswith(": met") and pan[1].endswith(": met") and pan[2].endswith("NOT met")
    walkers = figure_checks("walkers", results)
    assert "flow/input 10.000" in walkers[0] and walkers[0].endswith("NOT met")


def test_unknown_mode_is_an_input_error():
    from core.errors import InputError

    with pytest.raises(InputError, match="unknown temporal mode"):
        available_modes("off,wobble")
    assert available_modes("hold")[0][0] == "off"  # off is always measured: every ratio is against it


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bench", "temporal", "--video", "no/such.mp4"], "does not exist"),
        (["bench", "temporal", "--modes", "wobble"], "unknown temporal mode"),
        (["bench", "live", "--seconds", "0"], "--seconds must be positive"),
        (["bench", "live", "--video", "no/such.mp4"], "does not exist"),
    ],
)
def test_bad_input_is_one_error_line(argv, message, capsys):
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_end_to_end_times_the_file_pipeline(model, style_path, tmp_path):
    from bench.clips import make_pan_clip
    from bench.pipeline import IdentityBackend
    from bench.temporal import end_to_end
    from models.styles import StyleImage
    from realtime.stylizer import FrameStylizer, StylizerParams

    clip = make_pan_clip(tmp_path / "pan.mp4", frames=8, width=160, height=120)
    style = StyleImage.load(style_path)
    stylizers = {m: FrameStylizer(IdentityBackend(model), [style], StylizerParams(temporal=m)) for m in ("off", "hold")}
    times = end_to_end(clip, stylizers, tmp_path, frames=6, rounds=2)
    assert set(times) == {"off", "hold"} and all(0 < t < 5 for t in times.values())
    assert stylizers["off"].keyframe_stats.frames == 12  # the first 6 frames, every one of them, twice


def test_live_run_counts_what_was_shown(model, style_path, tmp_path):
    from bench.clips import make_walkers_clip
    from bench.live import format_results, live_run
    from bench.pipeline import IdentityBackend
    from models.styles import StyleImage
    from realtime.stylizer import FrameStylizer, StylizerParams

    clip = make_walkers_clip(tmp_path / "walkers.mp4", frames=20, width=160, height=120, fps=30)
    stylizer = FrameStylizer(IdentityBackend(model), [StyleImage.load(style_path)], StylizerParams(temporal="off"))
    r = live_run(clip, stylizer, 30.0)
    assert r.source_frames == 20 and r.shown + r.dropped == 20 and r.shown >= 1  # drops depend on the load
    assert r.raw == r.shown  # the identity network returns its input: every frame counts as passed through raw
    assert r.out_of_order == 0 and r.reason == "end of input"
    assert 0 < r.latency_p50_ms <= r.latency_p95_ms
    r.network_fps = 100.0
    assert any(line.startswith("  off ") for line in format_results([r], 30.0))


def test_unknown_default_clip_is_an_input_error(tmp_path):
    from bench.temporal import default_clips
    from core.errors import InputError

    with pytest.raises(InputError, match="unknown clip"):
        default_clips(tmp_path, 4, 30, ("pan", "moon"))


def test_style_loss_on_moving_pixels_sees_a_ghost_the_whole_frame_hides(model, content_path, style_path):
    import numpy as np

    from bench.temporal import masked_style_loss
    from models.styles import StyleImage
    from realtime.backends.torch_backend import TorchBackend
    from realtime.stylizer import FrameStylizer, StylizerParams

    style = StyleImage.load(style_path)
    photo = cv2.resize(cv2.imread(str(content_path)), (192, 128), interpolation=cv2.INTER_AREA)
    stylizer = FrameStylizer(TorchBackend(model), [style], StylizerParams())
    styled = stylizer.process(photo)
    stylizer.close()
    losses = StyleLosses(style.bgr, size=128, style_size=256)
    everywhere = np.ones(photo.shape[:2], bool)
    assert masked_style_loss(losses, styled, everywhere) == pytest.approx(losses(styled, photo)[1], rel=1e-3)
    figure = np.zeros(photo.shape[:2], bool)
    figure[32:96, 64:112] = True  # a "person" where the old keyframe was faded over the raw frame: a ghost
    ghost = styled.copy()
    ghost[figure] = (0.5 * styled[figure] + 0.5 * photo[figure]).astype(np.uint8)
    on_figure = masked_style_loss(losses, ghost, figure) / masked_style_loss(losses, styled, figure)
    whole = losses(ghost, photo)[1] / losses(styled, photo)[1]
    assert on_figure > 1.2 and on_figure > 1.5 * (whole - 1) + 1, (on_figure, whole)
