"""Reading checkpoint files and checking them against a network: one place for every model.

``read_torch`` and ``read_safetensors`` turn unreadable files into a ``WeightsError`` naming the
file; ``problems`` lists missing, unexpected and mis-shaped keys; ``load_checked`` loads a state
dict only when it fits exactly, so a wrong file is never half-loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from models.errors import WeightsError


def read_torch(path: Path, what: str, hint: str, tensors_only: bool = True) -> dict:
    """A ``torch.load(weights_only=True)`` dict; ``tensors_only`` also requires every value to be a tensor."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip, truncation and runtime errors alike mean "not that file"
        raise WeightsError(
            f"cannot read {what} {path} ({type(exc).__name__}): not a readable PyTorch checkpoint; {hint}"
        ) from exc
    if not isinstance(state, dict) or (tensors_only and not all(isinstance(v, torch.Tensor) for v in state.values())):
        raise WeightsError(f"{what} {path} is not a state dict of tensors; {hint}")
    return state


def read_safetensors(path: Path, what: str, hint: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a ``.safetensors`` file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{what} {path} is not a readable safetensors file ({exc}); {hint}") from exc


def problems(
    expected: Mapping[str, torch.Tensor],
    got: Mapping[str, torch.Tensor],
    prefix: str = "",
    allow_extra: frozenset[str] = frozenset(),
) -> list[str]:
    """Short phrases for each missing key, unexpected key and shape mismatch (keys shown with ``prefix``)."""
    found = [f"missing {prefix}{k}" for k in expected if k not in got]
    found += [f"unexpected {prefix}{k}" for k in got if k not in expected and k not in allow_extra]
    found += [
        f"{prefix}{k} has shape {tuple(got[k].shape)}, expected {tuple(v.shape)}"
        for k, v in expected.items()
        if k in got and tuple(got[k].shape) != tuple(v.shape)
    ]
    return found


def summary(found: list[str], limit: int = 6) -> str:
    more = f"; and {len(found) - limit} more" if len(found) > limit else ""
    return "; ".join(found[:limit]) + more


def load_checked(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    what: str,
    hint: str,
    allow_extra: frozenset[str] = frozenset(),
) -> None:
    """Load ``state`` (cast to fp32) into ``module`` if every key and shape fits, else one WeightsError."""
    own = module.state_dict()
    found = problems(own, state, allow_extra=allow_extra)
    if found:
        raise WeightsError(f"{what} does not fit the network ({summary(found)}); {hint}")
    module.load_state_dict({k: state[k].float() for k in own}, strict=True)
