"""``main.py bench temporal``: how well each temporal mode holds textures to the scene, what it costs in style.

For each clip (default: a generated slow pan at 1.7 px/frame, a generated static camera with
walking figures, and ``shared/video/cutBunny.mp4`` when found) every frame goes through one
stylizer per mode (``off``, ``hold``, ``flow``: whichever exist), interleaved frame by frame so
load drift on the shared machine hits each alike. Printed per mode: the warping error (Lai et al.
2018, ``bench.metrics``) and its ratio to the input's own figure and to ``off``, the long-term
figure (t, t+10), the VGG content and style loss of sampled frames (the AdaIN training losses; the style loss
also on the moving pixels alone, where ghosts would show)
with their ratio to ``off``, the stylizer's wall time per frame with its ratio to ``off``, and the
share of frames that ran the network. On the first clip, the whole file pipeline (decode → stylise →
x264, what ``video`` runs) is also timed for off and flow in ABBA order. Then the issue's figures,
met or not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: the issue's figures: (what, limit)
PAN_WARP_VS_OFF, PAN_STYLE_VS_OFF = 1 / 8, 1.25
WALKERS_WARP_VS_INPUT, WALKERS_STYLE_VS_OFF = 1.3, 1.25
STREET_WARP_VS_OFF, STREET_STYLE_VS_OFF = 0.4, 1.25  # issue 20: a still camera with people walking
TIME_VS_OFF = 1.25


@dataclass
class Clip:
    """A clip to measure and what kind of motion it shows ("pan": a moving camera, "walkers" (generated) or
    "street" (composed): a still camera with people walking, or "video": either)."""

    path: Path
    kind: str
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.path.stem


@dataclass
class ModeResult:
    """The numbers of one mode on one clip."""

    mode: str
    warp: float = float("nan")
    warp_long: float = float("nan")
    warp_moving: float = float("nan")  # short-term, on moving pixels only (where ghosts would show)
    content: float = float("nan")
    style: float = float("nan")
    style_moving: float = float("nan")  # style loss on the moving pixels of the sampled frames (ghosts show there)
    ms_median: float = float("nan")
    ms_mean: float = float("nan")
    keyframes: int = 0
    frames: int = 0
    ratios: dict[str, float] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)  # per pair: "short" (t−1, t), "long" (t−10, t)


def shared_video(name: str) -> Path | None:
    """``video/<name>`` beside a folder of the search path (where ``shared/video`` lives), if there is one."""
    from models.registry import default_store

    for root in (Path(s) for s in default_store().search_path):
        for candidate in (root.parent / "video" / name, root / "video" / name):
            if candidate.is_file():
                return candidate
    return None


def available_modes(wanted: str) -> tuple[list[str], list[str]]:
    """(modes to run, modes asked for that this build lacks); an unknown name is an InputError."""
    from core.errors import InputError
    from realtime.temporal import TEMPORAL_MODES

    names = [m.strip() for m in wanted.split(",") if m.strip()]
    known = ("off", "hold", "flow")
    bad = [m for m in names if m not in known]
    if bad or not names:
        raise InputError(f"unknown temporal mode {', '.join(bad) or '(none)'}; choose from: {', '.join(known)}")
    if "off" not in names:
        names.insert(0, "off")  # every ratio is against off
    return [m for m in names if m in TEMPORAL_MODES], [m for m in names if m not in TEMPORAL_MODES]


def read_frames(path: Path, limit: int) -> tuple[list[np.ndarray], float]:
    """The first ``limit`` frames of a video (uint8 BGR) and its frame rate."""
    from realtime.sources import VideoFileSource

    source = VideoFileSource(path)
    frames = []
    try:
        while len(frames) < limit and (frame := source.read()) is not None:
            frames.append(frame.image)
    finally:
        source.close()
    return frames, source.fps


def measure_clip(
    frames: list[np.ndarray], stylizers: dict, losses, loss_every: int, dump: Path | None = None
) -> dict[str, ModeResult]:
    """Run every frame through every stylizer (interleaved, rotating the order); metrics per mode.

    ``dump``: write the middle frame and each mode's output side by side there (PNG), to look at.
    """
    from bench.metrics import WarpingErrors

    modes = list(stylizers)
    warps = WarpingErrors(long_term=len(frames) > 10)
    times: dict[str, list[float]] = {m: [] for m in modes}
    sampled: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    sampled_moving: dict[str, list[float]] = {m: [] for m in modes}
    previous = None
    before = {m: _keyframes(st) for m, st in stylizers.items()}
    for i, frame in enumerate(frames):
        outputs = {}
        for k in range(len(modes)):
            mode = modes[(i + k) % len(modes)]  # rotate: no mode always runs right after the flow estimation
            start = time.perf_counter()
            outputs[mode] = stylizers[mode].process(frame)
            times[mode].append((time.perf_counter() - start) * 1000.0)
        warps.add(frame, outputs)
        if dump is not None and i == len(frames) // 2:
            import cv2

            cv2.imwrite(str(dump), np.concatenate([frame] + [outputs[m] for m in modes], axis=1))
        if i % loss_every == 0 or i == len(frames) - 1:
            for mode, pair in losses.many(frame, outputs).items():
                sampled[mode].append(pair)
            moving = moving_pixels(warps.estimator, frame, previous) if previous is not None else None
            if moving is not None and moving.mean() > MOVING_SHARE:
                for mode in modes:
                    sampled_moving[mode].append(masked_style_loss(losses, outputs[mode], moving))
        previous = frame
    summary = warps.summary()
    results = {
        "input": ModeResult(
            "input", summary["input"]["short"], summary["input"]["long"], summary["input"]["moving"], frames=len(frames)
        )
    }
    for mode in modes:
        content, style = np.mean(sampled[mode], axis=0)
        results[mode] = ModeResult(
            mode,
            summary[mode]["short"],
            summary[mode]["long"],
            summary[mode]["moving"],
            float(content),
            float(style),
            float(np.mean(sampled_moving[mode])) if sampled_moving[mode] else float("nan"),
            statistics.median(times[mode]),
            float(np.mean(times[mode])),
            _keyframes(stylizers[mode]) - before[mode],
            len(frames),
        )
    for name, r in results.items():  # per-pair errors for the JSON: where keyframes renew, errors jump
        r.series = {"short": warps.short.get(name, []), "long": warps.long.get(name, [])}
    off = results["off"]
    for r in results.values():
        r.ratios = {
            "warp_vs_input": r.warp / results["input"].warp,
            "warp_long_vs_input": r.warp_long / results["input"].warp_long,
            "warp_vs_off": r.warp / off.warp,
            "warp_long_vs_off": r.warp_long / off.warp_long,
            "warp_moving_vs_off": r.warp_moving / off.warp_moving,
        }
        if r.mode != "input":
            r.ratios.update(
                {
                    "content_vs_off": r.content / off.content,
                    "style_vs_off": r.style / off.style,
                    "style_moving_vs_off": r.style_moving / off.style_moving,
                    "time_vs_off": r.ms_median / off.ms_median,
                }
            )
    return results


MOVING_SHARE = 0.01  # a sampled frame counts for the moving-pixel style loss when this much of it moves


def moving_pixels(estimator, frame: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """The trusted pixels of ``frame`` that moved by more than a pixel since ``previous`` (bool), as the warping
    error's moving pixels (``bench.metrics.Correspondence.moving``)."""
    from bench.metrics import Correspondence

    return Correspondence.between(estimator, frame, previous).moving()


def masked_style_loss(losses, output: np.ndarray, mask: np.ndarray) -> float:
    """The VGG style loss of ``output`` (uint8 BGR) counted on the pixels of ``mask`` only: each layer's channel
    mean and std taken over the mask (resized to that layer's grid) against the style's, as ``StyleLosses`` does
    over the whole frame. Where a figure walks through a still shot, a ghost (the old keyframe faded over it)
    loses the style there, which the whole frame's statistics hardly show."""
    import cv2
    import torch
    import torch.nn.functional as F

    from models.training.adain_train import LAYER_SCALES

    image = losses._resize(output)
    small = cv2.resize(mask.astype(np.float32), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_AREA)
    weight = torch.from_numpy(small)[None, None]
    loss = 0.0
    with torch.inference_mode():
        for feat, (s_mean, s_std), scale in zip(
            losses.encoder.features(losses._tensor(image)), losses.style_stats, LAYER_SCALES
        ):
            w = F.interpolate(weight, size=feat.shape[-2:], mode="area")
            total = w.sum().clamp_min(1e-6)
            mean = (feat * w).sum((-2, -1), keepdim=True) / total
            std = (((feat - mean) ** 2 * w).sum((-2, -1), keepdim=True) / total + 1e-5).sqrt()
            loss += float(F.mse_loss(mean / scale, s_mean / scale) + F.mse_loss(std / scale, s_std / scale))
    return loss


def _keyframes(stylizer) -> int:
    stats = getattr(stylizer, "keyframe_stats", None)
    return stats.frames if stats is not None else stylizer.state.frames  # before keyframe counting: one per frame


def format_clip(clip: Clip, shape: tuple[int, ...], results: dict[str, ModeResult], header: str) -> list[str]:
    """A table: one row per mode (and the input), then the issue's figures for this kind of clip."""
    rows = [
        f"{clip.name} [{clip.kind}] {shape[1]}x{shape[0]}, {results['input'].frames} frames; {header}",
        f"  {'mode':6s} {'warp err':>9s} {'×input':>7s} {'×off':>6s} {'long(10)':>9s} {'×input':>7s} "
        f"{'mov×off':>7s} {'content':>8s} {'×off':>5s} {'style':>7s} {'×off':>5s} {'mov×off':>7s} {'ms/frame':>8s} "
        f"{'×off':>5s} "
        f"{'network':>8s}",
    ]
    for r in results.values():
        q = r.ratios
        line = (
            f"  {r.mode:6s} {r.warp:9.2e} {q['warp_vs_input']:7.1f} {q['warp_vs_off']:6.3f} {r.warp_long:9.2e} "
            f"{q['warp_long_vs_input']:7.1f}"
        )
        if r.mode != "input":
            line += (
                f" {q['warp_moving_vs_off']:7.3f} {r.content:8.3f} {q['content_vs_off']:5.2f} {r.style:7.3f} "
                f"{q['style_vs_off']:5.2f} {q['style_moving_vs_off']:7.2f} "
                f"{r.ms_median:8.1f} {q['time_vs_off']:5.2f} {r.keyframes / max(1, r.frames):7.0%}"
            )
        rows.append(line)
    rows.extend("  " + c for c in figure_checks(clip.kind, results))
    return rows


def figure_checks(kind: str, results: dict[str, ModeResult]) -> list[str]:
    """The issue's figures that apply to this kind of clip, each with the measured value and met/not met."""
    flow = results.get("flow")
    if flow is None:
        return ["(no flow mode in this build: figures not checked)"]
    q = flow.ratios
    checks = []
    if kind == "pan":
        checks += [
            ("warping error flow/off", q["warp_vs_off"], PAN_WARP_VS_OFF),
            ("style loss flow/off", q["style_vs_off"], PAN_STYLE_VS_OFF),
        ]
    if kind == "street":
        checks += [
            ("warping error flow/off", q["warp_vs_off"], STREET_WARP_VS_OFF),
            ("style loss flow/off", q["style_vs_off"], STREET_STYLE_VS_OFF),
        ]
    if kind == "walkers":
        checks += [
            ("warping error flow/input", q["warp_vs_input"], WALKERS_WARP_VS_INPUT),
            ("style loss flow/off", q["style_vs_off"], WALKERS_STYLE_VS_OFF),
        ]
    checks.append(("time per frame flow/off", q["time_vs_off"], TIME_VS_OFF))
    return [
        f"figure: {what} {value:.3f} (target ≤ {limit:.3f}): {'met' if value <= limit else 'NOT met'}"
        for what, value, limit in checks
    ]


class FirstFrames:
    """The first ``limit`` frames of a video file as a file source (ends there as "end of input")."""

    live = False

    def __init__(self, path: Path, limit: int) -> None:
        from realtime.sources import VideoFileSource

        self._source = VideoFileSource(path)
        self.name, self.fps, self.size, self.rate = (
            self._source.name,
            self._source.fps,
            self._source.size,
            self._source.rate,
        )
        self._left = limit

    def read(self):
        if self._left <= 0:
            return None
        self._left -= 1
        return self._source.read()

    def close(self) -> None:
        self._source.close()

    def describe(self) -> str:
        return self._source.describe()


def end_to_end(path: Path, stylizers: dict, tmp: Path, frames: int, rounds: int = 2) -> dict[str, float]:
    """Seconds per frame of the file pipeline (decode → stylise → x264, as ``video`` runs) per mode, ABBA order."""
    from realtime.pipeline import Pipeline, PipelineConfig
    from realtime.sinks import VideoFileSink

    modes = list(stylizers)
    times: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(rounds):
        for mode in modes if r % 2 == 0 else modes[::-1]:
            stylizers[mode].reset_temporal()
            source = FirstFrames(path, frames)
            sink = VideoFileSink(tmp / "end_to_end.mp4", source.rate)
            start = time.perf_counter()
            result = Pipeline(source, stylizers[mode], [sink], PipelineConfig(live=False)).run()
            times[mode].append((time.perf_counter() - start) / max(1, result.frames_out))
    return {m: float(np.mean(t)) for m, t in times.items()}


DEFAULT_CLIPS = ("pan", "walkers", "bunny", "ntu", "handheld", "street")


def default_clips(tmp: Path, frames: int, fps: int, which: tuple[str, ...] = DEFAULT_CLIPS) -> list[Clip]:
    """The generated pan and walkers clips, the composed real-photo ones (handheld; street: a still camera with
    people) written to ``tmp``, and the real cutBunny.mp4 and ntu.mp4 (drone footage) where they are found."""
    from bench.clips import make_handheld_clip, make_pan_clip, make_street_clip, make_walkers_clip
    from core.errors import InputError

    bad = [c for c in which if c not in DEFAULT_CLIPS]
    if bad or not which:
        raise InputError(f"unknown clip {', '.join(bad) or '(none)'}; choose from: {', '.join(DEFAULT_CLIPS)}")
    clips = []
    if "pan" in which:
        clips.append(Clip(make_pan_clip(tmp / "pan.mp4", frames, fps=fps), "pan", "pan1.7px"))
    if "walkers" in which:
        clips.append(Clip(make_walkers_clip(tmp / "walkers.mp4", frames, fps=fps), "walkers", "walkers"))
    if "handheld" in which:
        clips.append(Clip(make_handheld_clip(tmp / "handheld.mp4", frames, fps=fps), "pan", "handheld"))
    if "street" in which:
        clips.append(Clip(make_street_clip(tmp / "street.mp4", frames, fps=fps), "street", "street"))
    for name, file, kind in (("bunny", "cutBunny.mp4", "video"), ("ntu", "ntu.mp4", "pan")):
        found = shared_video(file) if name in which else None
        if found is not None:
            clips.append(Clip(found, kind))
    return clips


def run(args: argparse.Namespace) -> int:
    """Entry point from ``cli/bench.py`` (options defined there)."""
    from bench.metrics import StyleLosses
    from core.errors import InputError
    from models.registry import create_model, default_store
    from models.styles import StyleImage, find_style
    from realtime.backends.factory import create_backend
    from realtime.stylizer import FrameStylizer, StylizerParams

    if args.frames < 2:
        raise InputError("--frames must be at least 2")
    for path in args.video or []:
        if not Path(path).is_file():
            raise InputError(f"video {path} does not exist; check the path")
    if args.json is not None and not args.json.expanduser().parent.is_dir():
        raise InputError(f"folder {args.json.parent} for --json does not exist; create it first")
    if args.dump is not None and not args.dump.is_dir():
        raise InputError(f"--dump folder {args.dump} does not exist; create it first")
    modes, missing = available_modes(args.modes)
    store = default_store()
    model = create_model("microast", store=store).eval()
    style = StyleImage.load(find_style(args.style, store))
    losses = StyleLosses(style.bgr, size=args.loss_size)
    extra = {} if args.stability is None else {"stability": args.stability}
    rows: list[str] = []
    if missing:
        rows.append(f"(not in this build: {', '.join(missing)})")
    report: dict = {"frames": args.frames, "size": args.size, "style": style.name, "clips": []}
    # one stylizer per mode for every clip (reset between clips): one backend session each, built once
    stylizers = {
        m: FrameStylizer(
            create_backend(args.backend, model), [style], StylizerParams(size=args.size, temporal=m, **extra)
        )
        for m in modes
    }
    backend = next(iter(stylizers.values())).state.backend
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            clips = (
                [Clip(Path(p), "video") for p in args.video]
                if args.video
                else default_clips(Path(tmp_name), args.frames, 30, tuple(args.clips.split(",")))
            )
            for clip in clips:
                frames, fps = read_frames(clip.path, args.frames)
                if len(frames) < 2:
                    raise InputError(f"{clip.path} has fewer than 2 frames; give a longer clip")
                for st in stylizers.values():
                    st.process(frames[0])  # warm-up at this frame size (first-run allocations), then forget it
                    st.reset_temporal()
                dump = args.dump / f"{clip.name}_middle.png" if args.dump is not None else None
                results = measure_clip(frames, stylizers, losses, args.loss_every, dump)
                rows += format_clip(clip, frames[0].shape, results, f"size {args.size}, {backend}, style {style.name}")
                e2e = {}
                if args.end_to_end and not report["clips"]:  # the first clip only: it costs 2 runs per mode
                    pair = {m: stylizers[m] for m in ("off", "flow" if "flow" in stylizers else modes[-1])}
                    e2e = end_to_end(clip.path, pair, Path(tmp_name), len(frames))
                    other = list(pair)[-1]
                    rows.append(
                        f"  video pipeline (decode, stylise, x264; whole clip, ABBA): off "
                        f"{1000 * e2e['off']:.1f} ms/frame, {other} {1000 * e2e[other]:.1f} ms/frame: "
                        f"{other}/off {e2e[other] / e2e['off']:.3f}"
                    )
                    if other == "flow":
                        ok = e2e["flow"] / e2e["off"] <= TIME_VS_OFF
                        rows.append(
                            f"  figure: video --temporal flow time / off {e2e['flow'] / e2e['off']:.3f} "
                            f"(target ≤ {TIME_VS_OFF:.3f}): {'met' if ok else 'NOT met'}"
                        )
                report["clips"].append(
                    {
                        "clip": clip.name,
                        "path": str(clip.path),
                        "kind": clip.kind,
                        "fps": fps,
                        "shape": list(frames[0].shape[:2]),
                        "backend": backend,
                        "checks": figure_checks(clip.kind, results),
                        "video_pipeline_s_per_frame": e2e,
                        "results": {k: r.__dict__ for k, r in results.items()},
                    }
                )
                print("\n".join(rows), flush=True)
                rows = []
    finally:
        for st in stylizers.values():
            st.close()
    if args.json is not None:
        args.json.expanduser().write_text(json.dumps(report, indent=2, default=float))
        print(f"wrote {args.json}")
    return 0
