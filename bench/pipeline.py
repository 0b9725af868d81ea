"""``main.py bench pipeline``: what the threaded pipeline costs and delivers.

(a) overhead: decode → queues → encode with an identity backend vs a plain decode+encode loop;
(b) end-to-end fps with MicroAST at 640×480 for several processing sizes;
(c) flicker on a real clip: mean |frame − previous frame| of the stylised video relative to the
    input's, with and without temporal stability.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from models.base import StyleCode
from realtime.backends.base import Backend, BackendInfo


class IdentityBackend(Backend):
    """Returns the frame unchanged: isolates the pipeline's own cost."""

    @property
    def info(self) -> BackendInfo:
        return BackendInfo("identity", "cpu", "-")

    def run(self, frame: np.ndarray, code: StyleCode, alpha: float = 1.0) -> np.ndarray:
        return frame


def synthetic_clip(path: Path, width: int, height: int, frames: int, fps: int = 30) -> Path:
    """A moving pattern encoded with x264 (fast preset), standing in for a camera-sized file."""
    from realtime.video_writer import VideoFileWriter, VideoOptions

    writer = VideoFileWriter(path, fps, VideoOptions(preset="ultrafast", crf=23))
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(frames):
        img = np.stack([(xx + 3 * i) % 256, (yy + i) % 256, (xx // 2 + yy // 2 + 5 * i) % 256], -1).astype(np.uint8)
        writer.write(img, i / fps)
    writer.close()
    return path


def decode_encode_fps(src: Path, out: Path) -> float:
    """Plain loop: decode every frame and encode it again, no threads."""
    from realtime.sources import VideoFileSource
    from realtime.video_writer import VideoFileWriter

    source = VideoFileSource(src)
    writer = VideoFileWriter(out, source.rate)
    start, n = time.perf_counter(), 0
    while (frame := source.read()) is not None:
        writer.write(frame.image, frame.timestamp)
        n += 1
    writer.close()
    source.close()
    return n / (time.perf_counter() - start)


def pipeline_fps(src: Path, out: Path, stylizer) -> tuple[float, dict]:
    from realtime.pipeline import Pipeline, PipelineConfig
    from realtime.sinks import VideoFileSink
    from realtime.sources import VideoFileSource

    source = VideoFileSource(src)
    sink = VideoFileSink(out, source.rate)
    start = time.perf_counter()
    result = Pipeline(source, stylizer, [sink], config=PipelineConfig(live=False)).run()
    fps = result.frames_out / (time.perf_counter() - start)
    snap = result.stats.snapshot()
    return fps, {"stylize_ms": snap["stylize"].mean_ms, "latency_ms": snap["latency"].mean_ms}


def flicker(video: Path, stylizer, frames: int) -> tuple[float, float]:
    """Mean |Δ| between consecutive output frames and between consecutive input frames."""
    from realtime.sources import VideoFileSource

    source = VideoFileSource(video)
    prev_in = prev_out = None
    d_in, d_out = [], []
    for _ in range(frames):
        frame = source.read()
        if frame is None:
            break
        out = stylizer.process(frame.image).astype(np.int16)
        img = frame.image.astype(np.int16)
        if prev_in is not None:
            d_in.append(np.abs(img - prev_in).mean())
            d_out.append(np.abs(out - prev_out).mean())
        prev_in, prev_out = img, out
    source.close()
    return float(np.mean(d_out)), float(np.mean(d_in))


def run(args: argparse.Namespace) -> int:
    """Entry point from ``cli/bench.py`` (options defined there)."""
    from core.errors import InputError
    from models.registry import create_model, default_store
    from models.styles import StyleImage, find_style
    from realtime.backends.factory import create_backend
    from realtime.stylizer import FrameStylizer, StylizerParams

    opts = args
    if opts.frames < 2:
        raise InputError("--frames must be at least 2")
    store = default_store()
    video = opts.video or next(
        (
            p / "video" / "cutBunny.mp4"
            for p in [Path(s).parent for s in store.search_path]
            if (p / "video" / "cutBunny.mp4").is_file()
        ),
        None,
    )
    model = create_model("microast", store=store)
    style = [StyleImage.load(find_style(opts.style, store))]
    results: dict = {"frames": opts.frames}
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "a" in opts.only:
            results["overhead"] = []
            for w, h in ((640, 480), (1280, 720)):
                clip = synthetic_clip(tmp / f"src{w}.mp4", w, h, opts.frames)
                plain = decode_encode_fps(clip, tmp / "plain.mp4")
                piped, _ = pipeline_fps(clip, tmp / "piped.mp4", FrameStylizer(IdentityBackend(model), style))
                results["overhead"].append({"size": f"{w}x{h}", "decode_encode_fps": plain, "pipeline_fps": piped})
                rows.append(
                    f"(a) {w}x{h} identity     decode+encode {plain:6.1f} fps | pipeline {piped:6.1f} fps "
                    f"({100 * (piped / plain - 1):+.0f}%)"
                )
        if "b" in opts.only:
            results["end_to_end"] = []
            clip = synthetic_clip(tmp / "src640.mp4", 640, 480, opts.frames)
            for size in (int(s) for s in opts.sizes.split(",")):
                st = FrameStylizer(create_backend(opts.backend, model), style, StylizerParams(size=size))
                fps, extra = pipeline_fps(clip, tmp / "e2e.mp4", st)
                results["end_to_end"].append({"size": size, "backend": str(st.backend.info), "fps": fps, **extra})
                rows.append(
                    f"(b) 640x480 microast@{size:<4} {fps:6.2f} fps | stylize {extra['stylize_ms']:.0f} ms | "
                    f"latency {extra['latency_ms']:.0f} ms ({st.backend.info})"
                )
        if "c" in opts.only:
            if video is None:
                raise InputError("no clip for the flicker measurement; give --video PATH")
            results["flicker"] = []
            for strength in (0.0, opts.stability):
                st = FrameStylizer(
                    create_backend(opts.backend, model),
                    style,
                    StylizerParams(size=opts.flicker_size, temporal="hold" if strength else "off", stability=strength),
                )
                d_out, d_in = flicker(video, st, opts.frames)
                results["flicker"].append(
                    {"stability": strength, "output_mad": d_out, "input_mad": d_in, "ratio": d_out / d_in}
                )
                rows.append(
                    f"(c) {video.name} stability {strength:.2f}: output Δ {d_out:5.2f} / input Δ {d_in:5.2f} "
                    f"= {d_out / d_in:.2f}"
                )
    print("\n".join(rows))
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {opts.json}")
    return 0
