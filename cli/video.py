"""``main.py video``: stylise a video file, keeping every frame, its timing and the audio."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import add_model_args, bundled_styles_text, positive_int, unit_float, weight_files

ORDER = 20


def add_backend_args(parser: argparse.ArgumentParser) -> None:
    """Backend, precision, processing size and stylizer parameters shared by ``video`` and ``webcam``."""
    from realtime.backends.factory import BACKENDS, PRECISIONS
    from realtime.stylizer import PROCESSING_SIZES
    from realtime.temporal import TEMPORAL_MODES

    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="inference backend (auto picks the fastest available and says which)",
    )
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help="backend precision")
    sizes = "/".join(str(s) for s in PROCESSING_SIZES if s)
    parser.add_argument(
        "--size",
        type=positive_int,
        default=0,
        help=f"processing short side in px, e.g. {sizes} (0 = frame size); output keeps the frame size",
    )
    parser.add_argument("--style-size", type=positive_int, default=512, help="longest side of the style image in px")
    parser.add_argument("--alpha", type=unit_float, default=1.0, help="style strength, 0 (content) to 1 (full style)")
    parser.add_argument("--preserve-color", action="store_true", help="keep the input's colours")
    parser.add_argument(
        "--temporal",
        default="flow",
        choices=TEMPORAL_MODES,
        help="temporal stage: off (every frame on its own); hold (still regions keep their look: "
        "less flicker, but a moving camera blurs); flow, the default (on a still camera still "
        "pixels are held exactly and moving ones tracked, on a moving camera textures follow the "
        "scene along the optical flow; live, every camera frame is shown stylised by carrying the "
        "last keyframe while the network works on the next)",
    )
    parser.add_argument(
        "--stability",
        type=unit_float,
        default=None,
        help="strength of the temporal stage, 0 to 1. hold: how much of the previous output still "
        "regions keep (default 0.6). flow: the carried texture's weight where the flow is "
        "reliable and how long a keyframe lives; live, how slowly a new keyframe fades in "
        "(default 0.85)",
    )


def stylizer_params(args: argparse.Namespace, **changes):
    """The StylizerParams that ``add_backend_args`` options ask for (``changes`` override)."""
    from realtime.stylizer import StylizerParams

    from realtime.temporal import DEFAULT_STRENGTH

    temporal = args.temporal
    stability = DEFAULT_STRENGTH[temporal] if args.stability is None else args.stability
    return StylizerParams(
        alpha=args.alpha,
        preserve_color=args.preserve_color,
        size=args.size,
        temporal=temporal,
        stability=stability,
        **changes,
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "video",
        help="stylise a video file (all frames, same timing, audio copied)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("input", type=Path, help="input video file")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output video (.mp4, .m4v, .mov, .mkv, .webm, .avi). It is written as OUTPUT.part (playable "
        "at any moment) and renamed when complete: an existing OUTPUT is replaced only then. "
        "Interrupted (Ctrl-C, SIGTERM), the frames done are kept as OUTPUT, or as OUTPUT.part "
        "when OUTPUT exists",
    )
    p.add_argument(
        "--style",
        nargs="+",
        default=["starry_night"],
        help=f"style image path or name; two blend ({bundled_styles_text()})",
    )
    p.add_argument("--mix", type=unit_float, default=0.5, help="with two styles: weight of the second")
    add_model_args(p)
    add_backend_args(p)
    p.add_argument("--codec", default=None, help="video codec (default: libx264, or the container's default)")
    p.add_argument("--crf", type=positive_int, default=18, help="quality for x264/x265/vpx: lower is better")
    p.add_argument("--preset", default="veryfast", help="x264/x265 speed preset")
    p.add_argument("--out-size", default=None, metavar="WxH", help="scale the output to WxH (default: input size)")
    p.add_argument("--no-audio", action="store_true", help="do not copy the input's audio")
    add_cluster_args(p)
    p.set_defaults(run=run)


def parse_out_size(text: str | None) -> tuple[int, int] | None:
    """``--out-size WxH`` (None: the input's size); H.264 with yuv420p needs even sides."""
    from core.errors import InputError
    from core.sizes import parse_size

    if not text:
        return None
    size = parse_size(text, max_side=None, what="--out-size")
    if size.width % 2 or size.height % 2:
        raise InputError(f"--out-size {text}: H.264 with yuv420p needs even sides")
    return size.width, size.height


def run(args: argparse.Namespace) -> int:
    import sys
    import threading
    import time

    from cli.common import check_input_file, check_video_output, logging_through, note_replacing, progress_bar
    from core.checks import check_work_size
    from core.errors import InputError, StylizerError
    from realtime.pipeline import Pipeline, PipelineConfig
    from realtime.sinks import VideoFileSink
    from realtime.sources import VideoFileSource
    from realtime.stylizer import build_stylizer
    from realtime.video_writer import VideoOptions

    check_input_file(args.input, "video")
    output = check_video_output(args.output, (args.input,))
    if len(args.style) > 2:
        raise InputError(f"video takes one style or two to blend, got {len(args.style)}")
    options = VideoOptions(
        codec=args.codec, crf=args.crf, preset=args.preset, size=parse_out_size(args.out_size), audio=not args.no_audio
    )
    if args.workers or args.cluster:
        return run_cluster(args, output, options)
    source = VideoFileSource(args.input)  # opens and decodes one frame: a bad input fails here, before any work
    try:
        check_work_size(source.size, args.size, "short", "--size")
        note_replacing(output)
        # The output's .part file is created here (codec and preset checked), before the model loads.
        sink = VideoFileSink(output, source.rate, options, audio_from=args.input)
    except BaseException:
        source.close()
        raise
    try:
        params = stylizer_params(
            args, blend_index=1 if len(args.style) == 2 else None, mix=args.mix if len(args.style) == 2 else 0.0
        )
        stylizer = build_stylizer(
            args.model,
            args.style,
            args.backend,
            args.device,
            args.precision,
            params,
            args.checkpoint,
            weight_files(args.weights),
            args.style_size,
        )
    except BaseException:
        sink.close(complete=False)  # no frame written: the .part file goes, an existing output stays
        source.close()
        raise
    print(
        f"{source.describe()} → {output} | {stylizer.state.model} on {stylizer.state.backend} | "
        f"{stylizer.state.describe()}"
    )
    bar = progress_bar(source.frame_count_hint or None, "stylising", "frame")
    start = time.perf_counter()

    def progress(frame, image) -> None:
        if bar.total is not None and bar.n >= bar.total:  # the header undercounted
            bar.total = bar.n + 1
        bar.update(1)

    pipeline = Pipeline(
        source, stylizer, [sink], config=PipelineConfig(live=False), on_frame=progress, stop=threading.Event()
    )
    try:
        with logging_through(bar):
            result = pipeline.run()
    except StylizerError as exc:  # one line: what failed, and where the frames before it are
        raise type(exc)(f"{exc}; {kept_line(sink)}") from exc
    finally:
        if pipeline.reason == "end of input" and bar.total != bar.n:  # the header overcounted (ntu.mp4: 422, 362)
            bar.total = bar.n
        bar.close()
        stylizer.close()
    elapsed = time.perf_counter() - start
    if not result.complete:
        print(f"{result.reason}: {kept_line(sink)}", file=sys.stderr)
        return 130 if result.reason == "interrupted" else 1
    note_early_end(source, result.frames_out)  # after the run: the source has closed its container
    note_repairs(source)
    print(
        f"wrote {output}: {result.frames_out} frames in {elapsed:.1f} s "
        f"({result.frames_out / max(elapsed, 1e-9):.1f} fps; audio {sink.writer.audio})"
    )
    return 0


def kept_line(sink) -> str:
    """'12 frames kept in out.mp4' / '… in out.mp4.part (out.mp4 existed …)' / 'no frame was written'.

    The count is the frames the muxer took (in the file), not those handed to the encoder: a write
    that fails (or a cut) leaves the encoder's look-ahead out of the file.
    """
    frames = sink.writer.written
    if sink.output.kept is None:
        return (
            f"no frame was written; {sink.output.target} was not changed"
            if frames == 0
            else f"{frames} frames were written to {sink.output.part}"
        )
    return f"{frames} frames kept in {sink.output.describe_kept()}"


def note_early_end(source, frames: int) -> None:
    """A file that ends well before its header says (cut short, truncated download): say where it stopped.

    Where it stopped is the last frame's time, not ``frames / fps``: a variable-rate file's average
    rate says nothing about how long its frames last.
    """
    import sys

    import av

    try:
        with av.open(str(source.path)) as container:
            duration = (container.duration or 0) / av.time_base
    except (av.FFmpegError, OSError):
        return
    fps = getattr(source, "fps", 0.0) or 0.0
    last, first = getattr(source, "last_time", None), getattr(source, "first_time", 0.0) or 0.0
    ended = (last - first + 1 / fps) if last is not None and fps else (frames / fps if fps else 0.0)
    if duration and fps and ended < duration - 1.0:
        print(
            f"note: {source.name} ended at frame {frames} ({ended:.1f} s) although its header says "
            f"{duration:.1f} s; it may be truncated: the {frames} frames read are all written",
            file=sys.stderr,
        )


def note_repairs(source) -> None:
    """Say when the file's own times were not used as they are (pts out of order, missing, or a size change)."""
    import sys

    repairs = getattr(source, "repairs", 0)
    if repairs:
        print(
            f"note: {source.name} has timestamps out of order or missing ({repairs} frames); they were repaired "
            "from the frame order, as players do",
            file=sys.stderr,
        )


def add_cluster_args(parser: argparse.ArgumentParser) -> None:
    """``--workers``/``--cluster``: the job split into chunks over Ray workers (``cluster/``)."""
    group = parser.add_argument_group("cluster (needs Ray: pip install -e '.[cluster]')")
    group.add_argument(
        "--workers",
        type=positive_int,
        default=0,
        help="split the job over N Ray workers (one GPU each with --device cuda); 0: this process",
    )
    group.add_argument(
        "--cluster",
        default=None,
        metavar="ADDRESS",
        help="with --workers: auto (default) starts a local Ray sized to this machine; an address "
        "(HOST:6379, from `ray start --head`) joins that cluster",
    )
    group.add_argument(
        "--warmup",
        type=positive_int,
        default=None,
        help="with --workers: frames each chunk starts early so the temporal stage settles "
        "(default: 0 for --temporal off, else from --stability)",
    )
    group.add_argument("--retries", type=positive_int, default=2, help="with --workers: tries again per chunk")


def run_cluster(args: argparse.Namespace, output: Path, options) -> int:
    """``video --workers N``: plan, stylise chunks on Ray workers, join; the work folder makes it resumable."""
    from cli.common import logging_through, progress_bar
    from cluster.job import ClusterConfig, require_ray, run_job
    from cluster.worker import StylizerSpec
    from core.errors import InputError

    if not args.workers:
        raise InputError("--cluster needs --workers N (how many workers to start)")
    require_ray()  # before any work: the install hint
    two = len(args.style) == 2
    params = stylizer_params(args, blend_index=1 if two else None, mix=args.mix if two else 0.0)
    spec = StylizerSpec.prepare(
        args.model,
        args.style,
        args.backend,
        args.device,
        args.precision,
        params,
        args.checkpoint,
        weight_files(args.weights),
        args.style_size,
    )
    config = ClusterConfig(
        workers=args.workers, address=args.cluster or "auto", retries=args.retries, warmup=args.warmup
    )
    bar = progress_bar(None, "stylising", "frame")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        with logging_through(bar):
            report = run_job(args.input, output, spec, options, config, progress, say=bar.write)
    finally:
        bar.close()
    print(
        f"wrote {output}: {report.frames} frames in {report.seconds:.1f} s "
        f"({report.frames / max(report.seconds, 1e-9):.1f} fps; {report.chunks} chunks, {report.resumed} resumed, "
        f"{report.retried} retried; join {report.join_seconds:.1f} s; audio {report.audio})"
    )
    for line in report.describe_workers():
        print(f"  {line}")
    return 0
