"""``main.py gui``: the PyQt6 desktop app."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import bundled_styles_text, size_or_auto

ORDER = 50


def add_parser(sub: argparse._SubParsersAction) -> None:
    # Plain formatter: several defaults come from the saved settings, so each help says its own.
    p = sub.add_parser(
        "gui",
        help="open the desktop app (live view, style gallery, controls)",
        description="The desktop app. Settings not given here come from the last session.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--camera", default="0", help="camera index, device path or stream URL (default: 0)")
    source.add_argument("--video", type=Path, default=None, help="video file played as the camera (loops)")
    p.add_argument(
        "--styles",
        type=Path,
        default=None,
        help="folder of style images (default: the last one used, else the bundled paintings and the "
        f"styles on $STYLIZER_PATH; {bundled_styles_text()})",
    )
    p.add_argument("--model", default=None, help="feed-forward model (default: last used, else microast)")
    from realtime.backends.factory import BACKENDS

    p.add_argument(
        "--backend", default=None, choices=BACKENDS, help="inference backend (default: last used, else auto)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto: a usable GPU, else cpu)")
    p.add_argument(
        "--size",
        type=size_or_auto,
        default=None,
        help="processing short side in px, 0 = frame size, or auto: the largest size that shows every "
        "camera frame with >= 8 keyframes/s (default: last used, else auto)",
    )
    from realtime.temporal import TEMPORAL_MODES

    p.add_argument(
        "--temporal",
        default=None,
        choices=TEMPORAL_MODES,
        help="temporal stage (default: flow: every frame shown, keyframes carried along the flow)",
    )
    p.add_argument(
        "--output-dir",
        type=Path,
        default=Path("."),
        help="where recordings and snapshots go (default: the current folder)",
    )
    p.add_argument("--no-loop", action="store_true", help="stop at the end of a --video file instead of looping")
    p.add_argument("--settings", type=Path, default=None, help="settings file (default: the user's Qt settings)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gui.app import run_app
    from core.errors import InputError
    from models.registry import require_feed_forward

    if args.model is not None:
        require_feed_forward(args.model, "the live view runs a per-frame network")
    if args.video is not None and not args.video.is_file():
        raise InputError(f"video {args.video} does not exist; check the path")
    if not args.output_dir.is_dir():
        raise InputError(f"output folder {args.output_dir} does not exist; create it first")
    source = str(args.video) if args.video is not None else args.camera
    cli = {
        "source": source,
        "styles": args.styles,
        "model": args.model,
        "backend": args.backend,
        "device": args.device,
        "size": args.size,
        "output_dir": args.output_dir,
        "loop": not args.no_loop,
        "temporal": args.temporal,
    }
    return run_app(cli, args.settings)
