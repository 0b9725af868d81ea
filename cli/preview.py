"""``main.py preview``: one keyframe of an image or video, stylised by Gatys optimisation."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cli.common import bundled_styles_text, check_output, non_negative_float, positive_int

ORDER = 60


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preview",
        help="stylise one frame (image, or video frame at --at) by Gatys optimisation",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("input", type=Path, metavar="FRAME_OR_VIDEO", help="image file or video file")
    p.add_argument(
        "--at", type=non_negative_float, default=None, help="video: time of the frame in seconds (0 if unset)"
    )
    p.add_argument("--style", required=True, help=f"style image path or name ({bundled_styles_text()})")
    p.add_argument("-o", "--output", type=Path, required=True, help="output image (.png or .jpg)")
    p.add_argument("--size", type=positive_int, default=384, help="longest side of the frame in px (0 = as is)")
    p.add_argument("--style-size", type=positive_int, default=512, help="longest side of the style in px (0 = as is)")
    p.add_argument("--iters", type=positive_int, default=200, help="optimisation steps (VGG passes)")
    p.add_argument(
        "--style-weight", type=non_negative_float, default=None, help="style loss weight (default: GatysConfig's)"
    )
    p.add_argument(
        "--content-weight", type=non_negative_float, default=None, help="content loss weight (default: GatysConfig's)"
    )
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs", help="optimiser")
    p.add_argument("--init", choices=("content", "noise", "style"), default="content", help="start image")
    p.add_argument("--side-by-side", action="store_true", help="also run microast and write [feed-forward | gatys]")
    p.add_argument("--device", default="auto", help="torch device: auto (a usable CUDA GPU, else cpu), cpu or cuda")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cli.common import check_input_file, logging_through, progress_bar
    from core.checks import check_work_size
    from core.errors import InputError
    from models.gatys import GatysConfig
    from core.images import IMAGE_SUFFIXES, read_image, save_image
    from realtime.keyframe import KeyframeOptions, feed_forward_keyframe, gatys_keyframe, side_by_side
    from realtime.backends.factory import resolve_device
    from realtime.sources import grab_frame
    from models.registry import create_model, default_store
    from models.styles import find_style

    check_input_file(args.input, "input")
    output = check_output(args.output, (args.input,))
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"output {output} needs an image suffix such as .png or .jpg")
    if args.iters < 1:
        raise InputError("--iters must be at least 1")
    frame = grab_frame(args.input, args.at)  # validate inputs before loading any model
    check_work_size((frame.shape[1], frame.shape[0]), args.size, "long", "--size")
    store = default_store()
    style = read_image(find_style(args.style, store))
    check_work_size((style.shape[1], style.shape[0]), args.style_size, "long", "--style-size")
    weights = {
        k: v for k, v in (("style_weight", args.style_weight), ("content_weight", args.content_weight)) if v is not None
    }
    config = GatysConfig(iterations=args.iters, optimizer=args.optimizer, init=args.init, **weights).validate()
    options = KeyframeOptions(size=args.size, style_size=args.style_size, gatys=config)

    device = resolve_device(args.device)
    model = create_model("gatys", store=store, device=device)
    start = time.perf_counter()
    with progress_bar(args.iters, "gatys", "it") as bar, logging_through(bar):

        def progress(step: int, losses: dict[str, float]) -> None:
            bar.update(step - bar.n)
            bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()})

        image, result = gatys_keyframe(model, frame, style, options, progress=progress)
    seconds = time.perf_counter() - start
    if args.side_by_side:
        fast = create_model("microast", store=store, device=device)
        image = side_by_side(feed_forward_keyframe(fast, frame, style, args.size, args.style_size), image)
    save_image(image, output)
    print(
        f"wrote {output} ({image.shape[1]}x{image.shape[0]}, gatys {result.iterations} steps, {result.stopped}, "
        f"{seconds:.1f} s)"
    )
    return 0
