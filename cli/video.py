"""``main.py video``: stylise a video file, keeping every frame, its timing and the audio."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import add_model_args, check_output, positive_int, unit_float, weight_files

ORDER = 20


def add_backend_args(parser: argparse.ArgumentParser) -> None:
    """Backend, precision, processing size and stylizer parameters shared by ``video`` and ``webcam``."""
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime", "tensorrt"),
                        help="inference backend (auto picks the fastest available and says which)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16"), help="backend precision")
    parser.add_argument("--size", type=positive_int, default=0,
                        help="processing short side in px, e.g. 360/480/720 (0 = frame size); output keeps the frame size")
    parser.add_argument("--style-size", type=positive_int, default=512, help="longest side of the style image in px")
    parser.add_argument("--alpha", type=unit_float, default=1.0, help="style strength, 0 (content) to 1 (full style)")
    parser.add_argument("--preserve-color", action="store_true", help="keep the input's colours")
    parser.add_argument("--stability", type=unit_float, default=0.0,
                        help="temporal stability strength, 0 (off) to 1: less flicker in still regions")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("video", help="stylise a video file (all frames, same timing, audio copied)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", type=Path, help="input video file")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output video (.mp4, .m4v, .mov, .mkv, .webm, .avi). It is written as OUTPUT.part (playable "
                        "at any moment) and renamed when complete: an existing OUTPUT is replaced only then. "
                        "Interrupted (Ctrl-C, SIGTERM), the frames done are kept as OUTPUT, or as OUTPUT.part "
                        "when OUTPUT exists")
    p.add_argument("--style", nargs="+", default=["starry_night"], help="style image path or name; two blend")
    p.add_argument("--mix", type=unit_float, default=0.5, help="with two styles: weight of the second")
    add_model_args(p)
    add_backend_args(p)
    p.add_argument("--codec", default=None, help="video codec (default: libx264, or the container's default)")
    p.add_argument("--crf", type=positive_int, default=18, help="quality for x264/x265/vpx: lower is better")
    p.add_argument("--preset", default="veryfast", help="x264/x265 speed preset")
    p.add_argument("--out-size", default=None, metavar="WxH", help="scale the output to WxH (default: input size)")
    p.add_argument("--no-audio", action="store_true", help="do not copy the input's audio")
    p.set_defaults(run=run)


def parse_size(text: str | None) -> tuple[int, int] | None:
    from models.errors import InputError

    if not text:
        return None
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 16 or int(h) < 16:
        raise InputError(f"--out-size takes WxH in px (at least 16x16), got {text!r}")
    if int(w) % 2 or int(h) % 2:
        raise InputError(f"--out-size {text}: H.264 with yuv420p needs even sides")
    return int(w), int(h)


def run(args: argparse.Namespace) -> int:
    import sys
    import threading
    import time

    from cli.common import check_input_file, check_video_output, logging_through, note_replacing, progress_bar
    from models.checks import check_work_size
    from models.errors import InputError, StylizerError
    from realtime.pipeline import Pipeline, PipelineConfig
    from realtime.sinks import VideoFileSink
    from realtime.sources import VideoFileSource
    from realtime.stylizer import StylizerParams, build_stylizer
    from realtime.video_writer import VideoOptions

    check_input_file(args.input, "video")
    output = check_video_output(args.output, (args.input,))
    if len(args.style) > 2:
        raise InputError(f"video takes one style or two to blend, got {len(args.style)}")
    options = VideoOptions(codec=args.codec, crf=args.crf, preset=args.preset, size=parse_size(args.out_size),
                           audio=not args.no_audio)
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
        params = StylizerParams(alpha=args.alpha, preserve_color=args.preserve_color, size=args.size,
                                stability=args.stability, blend_index=1 if len(args.style) == 2 else None,
                                mix=args.mix if len(args.style) == 2 else 0.0)
        stylizer = build_stylizer(args.model, args.style, args.backend, args.device, args.precision, params,
                                  args.checkpoint, weight_files(args.weights), args.style_size)
    except BaseException:
        sink.close(complete=False)  # no frame written: the .part file goes, an existing output stays
        source.close()
        raise
    print(f"{source.describe()} → {output} | {stylizer.state.model} on {stylizer.state.backend} | "
          f"{stylizer.state.describe()}")
    bar = progress_bar(source.frame_count_hint or None, "stylising", "frame")
    start = time.perf_counter()

    def progress(frame, image) -> None:
        if bar.total is not None and bar.n >= bar.total:  # the header undercounted
            bar.total = bar.n + 1
        bar.update(1)

    pipeline = Pipeline(source, stylizer, [sink], config=PipelineConfig(live=False), on_frame=progress,
                        stop=threading.Event())
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
    print(f"wrote {output}: {result.frames_out} frames in {elapsed:.1f} s "
          f"({result.frames_out / max(elapsed, 1e-9):.1f} fps)")
    return 0


def kept_line(sink) -> str:
    """'12 frames kept in out.mp4' / '… in out.mp4.part (out.mp4 existed …)' / 'no frame was written'."""
    frames = sink.writer.frames
    if sink.output.kept is None:
        return f"no frame was written; {sink.output.target} was not changed" if frames == 0 else \
            f"{frames} frames were written to {sink.output.part}"
    return f"{frames} frames kept in {sink.output.describe_kept()}"


def note_early_end(source, frames: int) -> None:
    """A file that ends well before its header says (cut short, truncated download): say where it stopped."""
    import sys

    import av

    try:
        with av.open(str(source.path)) as container:
            duration = (container.duration or 0) / av.time_base
    except (av.FFmpegError, OSError):
        return
    fps = getattr(source, "fps", 0.0) or 0.0
    if duration and fps and frames / fps < duration - 1.0:
        print(f"note: {source.name} ended at frame {frames} ({frames / fps:.1f} s) although its header says "
              f"{duration:.1f} s; it may be truncated: the {frames} frames read are all written", file=sys.stderr)

