"""Train several tasks at once, in one process on one device, until a wall-clock deadline.

Built for one short GPU job (``tools/gpu_job.py``): the tasks of :mod:`models.training.common`
(AdaIN, AesFA) take turns, one optimiser step each, on batches drawn on the device from
:class:`models.training.gpu_data.DeviceCorpus`. Kernels are queued asynchronously, so while one
task's step runs on the GPU the next one's launches are already being issued; the host waits only
when losses are logged (every ``log_every`` rounds) and at snapshots.

* bf16 autocast on CUDA (bf16 has fp32's range, so no loss scaler), fp32 on the CPU;
  channels-last networks and inputs on CUDA.
* Adam, lr_t = lr / (1 + lr_decay · t), as :func:`models.training.common.train`.
* Every ``snapshot_seconds`` of wall time, at the deadline and on SIGTERM, into ``out``
  (fixed names, overwritten atomically, so a job cut short still leaves usable files):
  ``<task>.safetensors`` (the task's fp16 export), ``<task>_last.pt`` (fp32 weights, step and
  config: a warm start, not an exact resume: Adam's moments would put the file over the 16 MiB a
  result file may have), ``losses.csv`` (both tasks, interval means) and ``samples.png`` (each
  task's eval grid, one above the other).
* A task whose loss or weights stop being finite stops training; its last snapshot (taken while
  finite: checked before every snapshot) is kept.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from core.atomic import atomic_write
from core.errors import InputError
from models.training.common import TrainConfig, TrainingTask, _StopSignal, atomic_save
from models.training.data import STYLE_JITTER, SampleGrid
from models.training.gpu_data import DeviceCorpus, device_generator

log = logging.getLogger(__name__)

LOSS_FILE = "losses.csv"
SAMPLES_FILE = "samples.png"
LOSS_COLUMNS = ("model", "step", "content", "style", "contrast", "total", "lr", "train_seconds", "wall_seconds")


def checkpoint_name(task: str) -> str:
    return f"{task}_last.pt"


def export_name(task: str) -> str:
    return f"{task}.safetensors"


@dataclass
class TaskRun:
    """One task's optimiser state and progress inside :func:`train_together`."""

    task: TrainingTask
    config: TrainConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    grid: SampleGrid
    step: int = 0
    seconds: float = 0.0  # time this task's steps took: CUDA-event time on the GPU, host time on the CPU
    stopped: str = ""  # why it stopped early ("" while training)
    sums: dict[str, torch.Tensor] = field(default_factory=dict)  # loss sums since the last log, on the device
    count: int = 0
    events: list = field(default_factory=list)  # (start, end) CUDA events of the steps since the last log
    last: dict[str, float] = field(default_factory=dict)  # the last logged interval means
    snapshot_step: int = -1

    @property
    def name(self) -> str:
        return self.task.name


def make_run(task: TrainingTask, config: TrainConfig, init: Path | None = None, seed_offset: int = 0) -> TaskRun:
    """Optimiser, schedule and device generator for ``task``; ``init``: a ``<task>_last.pt`` to warm-start from."""
    device = torch.device(config.device)
    model = task.trainable()
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    step, seconds = 0, 0.0
    if init is not None:
        state = torch.load(init, map_location="cpu", weights_only=True)
        if state.get("task") != task.name:
            raise InputError(f"{init} is a {state.get('task')!r} checkpoint, not {task.name!r}")
        model.load_state_dict(state["model"])
        step, seconds = int(state["step"]), float(state["seconds"])
        log.info("%s: warm start at step %d from %s (fresh Adam moments)", task.name, step, init)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    for group in optimizer.param_groups:
        group["initial_lr"] = config.lr
    decay = config.lr_decay
    # last_epoch: a warm start continues the lr schedule where the checkpoint stopped
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 1.0 / (1.0 + decay * t), last_epoch=step - 1)
    return TaskRun(
        task,
        config,
        model,
        optimizer,
        scheduler,
        device_generator(device, config.seed * 1000 + seed_offset),
        SampleGrid.from_config(config, device),
        step=step,
        seconds=seconds,
    )


class LossCSV:
    """``losses.csv`` of every task: one row per task per log, appended (always a complete file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "w", newline="") as f:
            csv.writer(f).writerow(LOSS_COLUMNS)

    def write(self, run: TaskRun, lr: float, wall: float) -> None:
        row = [run.name, run.step] + [
            f"{run.last[k]:.6g}" if k in run.last else "" for k in ("content", "style", "contrast", "total")
        ]
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow(row + [f"{lr:.6g}", f"{run.seconds:.2f}", f"{wall:.2f}"])


def read_losses(path: Path) -> list[dict[str, str]]:
    """The rows of a ``losses.csv`` as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def train_step(run: TaskRun, content: DeviceCorpus, style: DeviceCorpus, precision: str) -> None:
    """One optimiser step of one task on a fresh device-drawn batch; no host sync."""
    cfg = run.config
    device = torch.device(cfg.device)
    if device.type == "cuda":  # the steps of all tasks share one stream, so events bracket this task's kernels
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
    else:
        tick = time.perf_counter()
    c = content.batch(cfg.batch, cfg.size, run.generator)
    s = style.batch(cfg.batch, cfg.size, run.generator, jitter=STYLE_JITTER)
    if device.type == "cuda":
        c = c.contiguous(memory_format=torch.channels_last)
        s = s.contiguous(memory_format=torch.channels_last)
    with _autocast(device, precision):
        losses = run.task.losses(c, s)
    run.optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    run.optimizer.step()
    run.scheduler.step()
    run.step += 1
    if device.type == "cuda":
        end.record()
        run.events.append((begin, end))
    else:
        run.seconds += time.perf_counter() - tick
    for k, v in losses.items():
        v = v.detach().float()
        run.sums[k] = run.sums[k] + v if k in run.sums else v
    run.count += 1


def flush_losses(run: TaskRun) -> bool:
    """Interval means into ``run.last`` (one host sync); False when a loss is not finite."""
    if run.events:
        run.events[-1][1].synchronize()
        run.seconds += sum(a.elapsed_time(b) for a, b in run.events) / 1000.0
        run.events = []
    if not run.count:
        return True
    run.last = {k: float(v) / run.count for k, v in run.sums.items()}
    run.sums, run.count = {}, 0
    return all(math.isfinite(v) for v in run.last.values())


def weights_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def render_samples(runs: list[TaskRun], precision: str) -> np.ndarray:
    """Each task's eval grid with its name and step above it, stacked: uint8 BGR."""
    panels = []
    for run in runs:
        device = torch.device(run.config.device)
        run.model.eval()
        with torch.no_grad(), _autocast(device, precision):
            image = run.grid.render(run.task)[0].float().clamp(0, 1)
        run.model.train()
        bgr = (image.permute(1, 2, 0).flip(-1).cpu().numpy() * 255.0).round().astype(np.uint8)
        label = np.full((24, bgr.shape[1], 3), 255, np.uint8)
        cv2.putText(
            label, f"{run.name}  step {run.step}", (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA
        )
        panels.append(np.concatenate([label, bgr]))
    width = max(p.shape[1] for p in panels)
    panels = [
        cv2.copyMakeBorder(p, 0, 0, 0, width - p.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255)) for p in panels
    ]
    return np.concatenate(panels)


def snapshot(runs: list[TaskRun], out: Path, precision: str, wall: float) -> None:
    """Write every task's export, checkpoint and the sample grid (only for tasks still finite)."""
    for run in runs:
        if run.stopped or run.snapshot_step == run.step:
            continue
        if not flush_losses(run) or not weights_finite(run.model):
            run.stopped = (
                f"not finite at step {run.step} (losses {run.last}); kept the snapshot of step {run.snapshot_step}"
            )
            log.error("%s: %s", run.name, run.stopped)
            continue
        atomic_write(out / export_name(run.name), lambda tmp, run=run: run.task.export(Path(tmp)))
        state = {
            "task": run.name,
            "step": run.step,
            "seconds": run.seconds,
            "wall_seconds": wall,
            "losses": run.last,
            "model": {k: v.detach().float().cpu() for k, v in run.model.state_dict().items()},
            "config": {k: (str(v) if isinstance(v, (Path, tuple)) else v) for k, v in asdict(run.config).items()},
        }
        atomic_save(state, out / checkpoint_name(run.name))
        run.snapshot_step = run.step
    image = render_samples(runs, precision)
    atomic_write(out / SAMPLES_FILE, lambda tmp: Path(tmp).write_bytes(cv2.imencode(".png", image)[1].tobytes()))


def train_together(
    runs: list[TaskRun],
    content: DeviceCorpus,
    style: DeviceCorpus,
    out: Path,
    seconds: float,
    precision: str = "bf16",
    snapshot_seconds: float = 60.0,
    log_every: int = 25,
    status_seconds: float = 30.0,
    max_rounds: int | None = None,
) -> dict[str, dict]:
    """Step every run in turn until ``seconds`` of wall time have passed or ``max_rounds`` rounds (one step of
    each run) are done, whichever comes first; returns a summary per task."""
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    deadline = start + seconds
    losses = LossCSV(out / LOSS_FILE)
    for run in runs:
        run.model.train()
    last_snapshot = last_status = start
    rounds = 0
    with _StopSignal() as stop:
        while time.monotonic() < deadline and not stop.is_set() and (max_rounds is None or rounds < max_rounds):
            active = [r for r in runs if not r.stopped]
            if not active:
                break
            for run in active:
                train_step(run, content, style, precision)
            rounds += 1
            now = time.monotonic()
            if rounds % log_every == 0:
                for run in active:
                    lr = run.optimizer.param_groups[0]["lr"]
                    if not flush_losses(run):
                        run.stopped = f"loss not finite at step {run.step} ({run.last}); kept the snapshot of step {run.snapshot_step}"
                        log.error("%s: %s", run.name, run.stopped)
                    losses.write(run, lr, time.monotonic() - start)
            if now - last_status >= status_seconds:
                log.info(
                    "%.0f s: %s",
                    now - start,
                    "; ".join(f"{r.name} step {r.step} total {r.last.get('total', float('nan')):.4g}" for r in runs),
                )
                last_status = now
            if now - last_snapshot >= snapshot_seconds:
                snapshot(runs, out, precision, now - start)
                last_snapshot = time.monotonic()
        if stop.is_set():
            log.warning("SIGTERM: writing a last snapshot")
    for run in runs:  # the last partial interval goes into the log too
        if run.count and not run.stopped:
            lr = run.optimizer.param_groups[0]["lr"]
            if flush_losses(run):
                losses.write(run, lr, time.monotonic() - start)
    snapshot(runs, out, precision, time.monotonic() - start)
    wall = time.monotonic() - start
    return {
        run.name: {
            "steps": run.step,
            "batch": run.config.batch,
            "size": run.config.size,
            "lr": run.config.lr,
            "lr_decay": run.config.lr_decay,
            "samples_seen": run.step * run.config.batch,
            "snapshot_step": run.snapshot_step,
            "final_losses": run.last,
            "stopped": run.stopped,
            "wall_seconds": round(wall, 1),
            "precision": precision,
        }
        for run in runs
    }
