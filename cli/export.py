"""``main.py export``: a model's per-frame network as a verified ONNX file or TensorRT engine."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import add_model_args, positive_int, weight_files

ORDER = 40


def add_parser(sub: argparse._SubParsersAction) -> None:
    from export.formats import DEFAULT_PROFILE, FORMATS

    p = sub.add_parser(
        "export",
        help="export a model to ONNX or TensorRT (verified against PyTorch)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_model_args(p)
    p.add_argument(
        "--format",
        default="onnx",
        choices=sorted(FORMATS),
        help="; ".join(f"{f.name}: {f.description}" for f in FORMATS.values()),
    )
    p.add_argument(
        "--precision", default="fp32", choices=("fp32", "fp16"), help="fp16 keeps normalisation statistics in fp32"
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (17..21)")
    p.add_argument("--min", default=str(DEFAULT_PROFILE.min), metavar="WxH", help="tensorrt: smallest frame")
    p.add_argument("--opt", default=str(DEFAULT_PROFILE.opt), metavar="WxH", help="tensorrt: frame size to tune for")
    p.add_argument("--max", default=str(DEFAULT_PROFILE.max), metavar="WxH", help="tensorrt: largest frame")
    p.add_argument(
        "--style-size", type=positive_int, default=256, help="longest side of the style image used to verify the export"
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from export.exporter import ExportRequest, check_request, export_artifact
    from core.sizes import parse_size
    from export.formats import ShapeProfile
    from export.metadata import checkpoint_fingerprint
    from models.registry import create_model, default_store, require_feed_forward, resolve_checkpoint

    request = ExportRequest(
        format=args.format,
        precision=args.precision,
        out_dir=args.output.expanduser(),
        opset=args.opset,
        style_size=args.style_size,
        profile=ShapeProfile(parse_size(args.min), parse_size(args.opt), parse_size(args.max)),
    )
    fmt = check_request(request)  # every argument checked before a model is built
    config = require_feed_forward(args.model, "export writes that network")
    if fmt.needs_gpu:
        from export.tensorrt import gpu_identity, require_tensorrt

        require_tensorrt(alternative="--format onnx")
        gpu_identity(alternative="--format onnx")
    store = default_store()
    files = weight_files(args.weights)
    _, paths = resolve_checkpoint(config, store, args.checkpoint, files)
    request = replace(request, checkpoint_sha256=checkpoint_fingerprint(paths))
    # the folder is made once every argument, the model and its weights are known good: a refused export leaves
    # nothing behind; a read-only disk or folder above it is one line now, not after the export
    if not request.out_dir.is_dir():
        from core.errors import InputError

        try:
            request.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"cannot create the output folder {request.out_dir}: {exc.strerror}; choose another -o folder"
            ) from None
    from cli.common import check_output

    check_output(request.out_dir / "probe")  # an unwritable folder fails now, not after the export
    model = create_model(args.model, checkpoint=args.checkpoint, store=store, device="cpu", files=files)
    path = export_artifact(model.eval(), request, store)
    print(f"wrote {path}")
    return 0
