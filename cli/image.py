"""``main.py image``: stylise a still image."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from cli.common import (
    add_model_args,
    bundled_styles_text,
    check_output,
    finite_float,
    positive_int,
    unit_float,
    weight_files,
)

ORDER = 10
log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from realtime.backends.factory import BACKENDS, PRECISIONS

    p = sub.add_parser("image", help="stylise a still image", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("content", type=Path, help="content image")
    p.add_argument("--style", nargs="+", required=True, help=f"style image paths or names ({bundled_styles_text()})")
    p.add_argument("--style-weights", nargs="+", type=finite_float, default=None, help="blend weights, one per style")
    p.add_argument("--mask", type=Path, default=None, help="grey mask: white takes the first style, black the second")
    add_model_args(p)
    p.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="inference backend for feed-forward models (auto picks the fastest available and says "
        "which); gatys and --mask run on PyTorch",
    )
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help="backend precision")
    p.add_argument("--alpha", type=unit_float, default=1.0, help="style strength, 0 (content) to 1 (full style)")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    p.add_argument("--size", type=positive_int, default=512, help="longest side of the content in px (0 = as is)")
    p.add_argument("--style-size", type=positive_int, default=512, help="longest side of the style in px (0 = as is)")
    p.add_argument("--iters", type=positive_int, default=300, help="gatys: optimisation steps")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs", help="gatys: optimiser")
    p.add_argument("--init", choices=("content", "noise", "style"), default="content", help="gatys: start image")
    p.add_argument("-o", "--output", type=Path, required=True, help="output image (.png or .jpg)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.images import read_image, save_image, to_bgr
    from models.registry import create_model, default_store, model_config
    from realtime.still import StillOptions, gatys_still, stylize_still
    from models.styles import find_style

    from cli.common import check_input_file
    from core.checks import check_work_size

    check_input_file(args.content, "image")
    if args.mask is not None:
        check_input_file(args.mask, "mask")
    output = check_output(args.output, (args.content,))
    if output.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"):
        from core.errors import InputError

        raise InputError(f"output {output} needs an image suffix such as .png or .jpg")
    content = read_image(args.content)  # validate before loading any model
    check_work_size((content.shape[1], content.shape[0]), args.size, "long", "--size")
    store = default_store()
    styles = [find_style(s, store) for s in args.style]
    for s in styles:
        style = read_image(s)
        check_work_size((style.shape[1], style.shape[0]), args.style_size, "long", "--style-size")
    options = StillOptions(
        alpha=args.alpha,
        preserve_color=args.preserve_color,
        size=args.size,
        style_size=args.style_size,
        style_weights=args.style_weights,
        mask=args.mask,
        gatys={"iterations": args.iters, "optimizer": args.optimizer, "init": args.init},
    )
    optimises = not model_config(args.model).feed_forward  # gatys: the image itself is optimised
    if optimises and (len(styles) != 1 or args.mask is not None):
        from models.errors import ModelError  # checked here so no progress bar is left half drawn

        raise ModelError(f"{args.model} takes exactly one style and no mask")
    on_torch = optimises or args.mask is not None
    if on_torch and args.backend not in ("auto", "torch"):
        from core.errors import InputError

        why = (
            f"{args.model} optimises the image itself"
            if optimises
            else "--mask blends the two styles inside the network, which exported graphs do not take"
        )
        raise InputError(f"{why}: it runs on PyTorch; use --backend auto or torch")
    from realtime.backends.factory import resolve_device

    model = create_model(
        args.model,
        checkpoint=args.checkpoint,
        store=store,
        device=resolve_device(args.device),
        files=weight_files(args.weights),
    )
    start = time.perf_counter()
    if optimises:
        from cli.common import logging_through, progress_bar

        with progress_bar(args.iters, "gatys", "it") as bar, logging_through(bar):

            def progress(step: int, losses: dict) -> None:
                bar.update(step - bar.n)
                bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()})

            out = to_bgr(gatys_still(model, args.content, styles, options, progress=progress))
        runs_on = f"torch {model.device}"
    elif args.mask is not None:
        out = to_bgr(stylize_still(model, args.content, styles, options))
        runs_on = f"torch {model.device}"
    else:
        from realtime.backends.factory import create_backend
        from realtime.still import stylize_still_on

        backend = create_backend(args.backend, model, args.device, args.precision)
        try:
            out = stylize_still_on(backend, model, args.content, styles, options)
            runs_on = str(backend.info)
        finally:
            backend.close()
    save_image(out, output)
    print(
        f"wrote {output} ({out.shape[1]}x{out.shape[0]}, {args.model} on {runs_on}, "
        f"{time.perf_counter() - start:.2f} s)"
    )
    return 0
