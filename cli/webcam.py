"""``main.py webcam``: live stylisation of a camera, stream or a video file played as a camera."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import add_model_args, bundled_styles_text, positive_float, positive_int, size_or_auto, weight_files
from cli.video import add_backend_args, stylizer_params

ORDER = 30


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "webcam",
        help="live stylisation in a window (camera, stream URL, or a file as a camera)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--camera", default="0", help="camera index, device path, stream URL, or a video file/folder")
    p.add_argument("--width", type=positive_int, default=0, help="requested camera width (0 = driver default)")
    p.add_argument("--height", type=positive_int, default=0, help="requested camera height (0 = driver default)")
    p.add_argument("--fps", type=float, default=0.0, help="requested camera frame rate (0 = driver default)")
    p.add_argument(
        "--style",
        nargs="+",
        default=None,
        help=f"style images or names; keys 1-9 pick ({bundled_styles_text()}; default: those and every "
        "style on the search path)",
    )
    add_model_args(p)
    add_backend_args(p)
    p.set_defaults(size="auto")  # realtime.adaptive.AutoSize; an explicit --size N (or --target-fps) wins
    size = next(a for a in p._actions if a.dest == "size")
    size.type = size_or_auto
    size.help = (
        "processing short side in px, 0 = frame size, or auto: the largest size that shows every camera "
        "frame with >= 8 keyframes/s, re-chosen as the load changes (the overlay says which and why)"
    )
    p.add_argument(
        "--target-fps",
        type=positive_float,
        default=None,
        metavar="F",
        help="adapt the processing size (160-720 px short side, with hysteresis) so the network "
        "delivers about F keyframes/s; the overlay shows the size in use (default: --size auto)",
    )
    p.add_argument(
        "--record",
        type=Path,
        default=None,
        metavar="FILE",
        help="record the stylised stream to FILE from the start. As for video -o, an existing FILE is "
        "replaced when the recording ends (q, Ctrl-C, --max-seconds); one cut short by a failure "
        "(disk full) is kept as FILE.part. Later takes (r key) go to new time-stamped names",
    )
    p.add_argument("--virtual-cam", action="store_true", help="also send frames to a virtual camera (pyvirtualcam)")
    p.add_argument("--no-window", action="store_true", help="no display (e.g. recording or virtual camera only)")
    p.add_argument("--fullscreen", action="store_true", help="start the window fullscreen")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--snapshot-dir", type=Path, default=Path("."), help="where the s key saves PNG snapshots")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cli.common import check_video_output, note_replacing
    from cli.window import OpenCVWindow, WindowFrontEnd
    from core.errors import InputError
    from models.registry import default_store
    from models.styles import list_styles_on_path
    from realtime.controls import help_text
    from realtime.session import LiveSession, SessionConfig
    from realtime.stylizer import build_stylizer

    if args.max_seconds is not None and args.max_seconds <= 0:
        raise InputError(f"--max-seconds must be positive, got {args.max_seconds}")
    record = check_video_output(args.record) if args.record else None
    if record is not None:
        note_replacing(record)
    if args.no_window and not record and not args.virtual_cam and args.max_seconds is None:
        print("note: no window, recording or virtual camera: frames are stylised and discarded (Ctrl-C stops)")
    auto_size, args.size = args.size == "auto", 0 if args.size == "auto" else args.size
    styles = args.style or [str(p) for p in list_styles_on_path(default_store())] or ["starry_night"]
    session = LiveSession(
        SessionConfig(
            source=args.camera,
            width=args.width,
            height=args.height,
            fps=args.fps,
            record=record,
            snapshot_dir=args.snapshot_dir,
            virtual_camera=args.virtual_cam,
            max_seconds=args.max_seconds,
        )
    )
    source = session.open()  # a bad camera, file or virtual camera fails here, before the model loads
    window = None
    try:
        stylizer = build_stylizer(
            args.model,
            styles,
            args.backend,
            args.device,
            args.precision,
            stylizer_params(args),
            args.checkpoint,
            weight_files(args.weights),
            args.style_size,
            live=True,
        )
        if not args.no_window:
            window = OpenCVWindow(f"stylizer - {source.name}", fullscreen=args.fullscreen)
    except BaseException:
        session.finish()
        raise
    count = len(stylizer.state.styles)
    keys = "keys 1-9 pick the first nine, n/p step through all" if count > 9 else f"keys 1-{count} pick"
    if auto_size and args.target_fps is None:
        stylizer.set_auto_size()
    else:
        stylizer.set_target_fps(args.target_fps)
    print(
        f"{source.describe()} | {stylizer.state.model} on {stylizer.state.backend} | {count} styles loaded "
        f"({keys}): {', '.join(stylizer.state.styles)}"
    )
    try:
        if window is not None:
            print("keys:\n" + help_text())
            result = WindowFrontEnd(session, window).run(stylizer)
        else:
            result = session.run(stylizer)
    finally:
        stylizer.close()
    print(f"{result.reason}: {result.stats.summary()}")
    if stylizer.state.size_note:
        print(stylizer.state.size_note)
    for path in session.recorder.files:
        print(f"recorded {path}")
    if result.reason == "interrupted":  # Ctrl-C or SIGTERM: the same exit code as every other command
        return 130
    return 1 if result.reason.startswith("source lost") else 0
