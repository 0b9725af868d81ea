"""``main.py bench train``: seconds per optimiser step of a model's training, in each precision the device has.

One training task per precision (``fp32``, and ``bf16`` on a CPU with native bf16 or ``fp16`` on CUDA: what
:func:`models.training.common.amp_dtype` picks for ``main.py train``), built from the same seed, takes one
full step (losses, backward, Adam) per round on the same real batch of the corpus, interleaved, so load drift
on a shared machine hits each alike. Data loading is not timed (``train`` decodes in loader workers). Printed:
median and fastest seconds per step, each precision's ratio to fp32, and the first step's total loss of each,
which must agree closely (same weights, same batch: a precision that changes the loss is not a speed-up).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class PrecisionResult:
    """The timings of one precision."""

    name: str
    seconds: list[float] = field(default_factory=list)
    first_loss: float = float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def precisions(device: torch.device) -> dict[str, torch.dtype | None]:
    """fp32 (no autocast) and, where the device has it, the mixed precision ``main.py train`` uses."""
    from models.training.common import PRECISION_NAMES, amp_dtype

    dtype = amp_dtype(device)
    return {"fp32": None} | ({} if dtype is None else {PRECISION_NAMES[dtype]: dtype})


def real_batch(config) -> tuple[torch.Tensor, torch.Tensor]:
    """The first (content, style) batch ``main.py train`` would draw from the corpus with this config."""
    from models.training.data import make_loader

    return next(iter(make_loader(config)))


def bench_train(
    model: str, content: Path, style: Path, size: int, batch: int, steps: int, device: str = "cpu"
) -> list[PrecisionResult]:
    """Time ``steps`` interleaved optimiser steps per precision (after one untimed warm-up step each)."""
    import tempfile

    from models.training.common import TrainConfig, create_task, make_adam

    dev = torch.device(device)
    with tempfile.TemporaryDirectory() as scratch:
        config = TrainConfig(
            content_dir=content,
            style_dir=style,
            out=Path(scratch),
            batch=batch,
            size=size,
            device=device,
            num_workers=0,
        )
        runs = []
        for name, dtype in precisions(dev).items():
            task, config = create_task(model, config)  # seeded: the same initial weights for every precision
            params = [p for p in task.trainable().parameters() if p.requires_grad]
            runs.append((PrecisionResult(name), dtype, task, make_adam(params, config.lr, dev)))
        c, s = (t.to(dev) for t in real_batch(config))

    def step(dtype, task, optimizer) -> tuple[float, float]:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        start = time.perf_counter()
        with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            losses = task.losses(c, s)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter() - start, float(losses["total"].detach())

    for result, dtype, task, optimizer in runs:  # warm-up (allocator, oneDNN primitives); its loss is step 1's
        result.first_loss = step(dtype, task, optimizer)[1]
    for _ in range(steps):
        for result, dtype, task, optimizer in runs:
            result.seconds.append(step(dtype, task, optimizer)[0])
    return [r for r, *_ in runs]


def format_results(model: str, size: int, batch: int, device: str, results: list[PrecisionResult]) -> str:
    base = results[0].median
    lines = [
        f"{model} training step, batch {batch} at {size} px on {device}, {len(results[0].seconds)} steps per "
        "precision, interleaved (data loading not timed)",
        f"{'precision':<10} {'median s':>9} {'fastest s':>10} {'vs fp32':>8} {'step-1 loss':>12}",
    ]
    for r in results:
        lines.append(
            f"{r.name:<10} {r.median:>9.2f} {min(r.seconds):>10.2f} {base / r.median:>7.2f}x {r.first_loss:>12.4g}"
        )
    return "\n".join(lines)
