"""A training checkpoint (``last.pt`` of ``main.py train``, or ``<task>_last.pt`` of the GPU job) read back:
its facts, the inference model it holds, and its fp16 export.

Both files keep the trainable module's ``state_dict`` under "model" (AdaIN: the decoder; AesFA: the
whole network), the task name, the step and the training seconds; ``main.py train`` also keeps the
moving average of those weights under "ema", which is what a snapshot reads unless told otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.errors import InputError


@dataclass
class TrainingSnapshot:
    """What a checkpoint says about its run, and the trained weights."""

    path: Path
    task: str  # "adain" / "aesfa"
    step: int
    seconds: float  # training time (excludes sampling and checkpoints)
    config: dict
    model_state: dict[str, torch.Tensor]
    averaged: bool = False  # model_state is the run's moving average of the weights, not the last step's
    phases: list[dict] = field(default_factory=list)  # which settings trained which steps (models.training.phases)

    @property
    def label(self) -> str:
        return f"{self.task} {self.path.name} step {self.step}{' EMA' if self.averaged else ''}"


def read_snapshot(path: Path, task: str | None = None, averaged: bool = True) -> TrainingSnapshot:
    """Read a training checkpoint; a one-line InputError if it is not one (or not of ``task``).

    ``averaged``: the weights' moving average where the checkpoint has one, else the last step's weights.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"training checkpoint {path} does not exist; give the last.pt of a run")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means the same thing to the user
        raise InputError(f"{path} is not a readable training checkpoint ({exc.__class__.__name__})") from exc
    if not isinstance(state, dict) or "model" not in state or "task" not in state:
        raise InputError(f"{path} is not a training checkpoint of 'main.py train' (no task/model entries)")
    if task is not None and state["task"] != task:
        raise InputError(f"{path} is a {state['task']!r} checkpoint, not {task!r}; give a {task} run's last.pt")
    from models.training.phases import read_phases

    use_average = averaged and "ema" in state
    return TrainingSnapshot(
        path,
        str(state["task"]),
        int(state.get("step", 0)),
        float(state.get("seconds", 0.0)),
        dict(state.get("config", {})),
        state["ema"] if use_average else state["model"],
        use_average,
        read_phases(state),
    )


def inference_model(snapshot: TrainingSnapshot) -> torch.nn.Module:
    """The app's model (eval mode, fp32, CPU) with the snapshot's trained weights."""
    if snapshot.task == "adain":
        from models.adain import AdaIN, make_decoder

        decoder = make_decoder()
        decoder.load_state_dict({k: v.float() for k, v in snapshot.model_state.items()})
        return AdaIN(None, decoder)
    if snapshot.task == "aesfa":
        from models.aesfa import NETS, AesFA

        model = AesFA()
        nets: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in snapshot.model_state.items():
            net, _, rest = key.partition(".")
            nets.setdefault(net, {})[rest] = value
        if set(nets) != set(NETS):
            raise InputError(f"{snapshot.path} holds networks {sorted(nets)}, not AesFA's {list(NETS)}")
        model.load_nets(nets)
        return model.eval()
    raise InputError(f"{snapshot.path} is a {snapshot.task!r} checkpoint; only adain and aesfa have inference models")


def export_weights(snapshot: TrainingSnapshot, path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Write the snapshot's inference weights as the fp16 safetensors the app loads (as ``task.export`` does)."""
    model = inference_model(snapshot)
    meta = {"trained_size": str(snapshot.config.get("size", "")), "step": str(snapshot.step), **(metadata or {})}
    if snapshot.task == "adain":
        from models.adain import save_our_decoder

        return save_our_decoder(model.decoder, path, extra_metadata=meta)
    return model.save_safetensors(path, metadata=meta)
