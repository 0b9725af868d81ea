"""Models for the export tests: MicroAST with its real weights, AdaIN/AesFA with seeded random weights."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn


def spread_output(model, frame: np.ndarray, code) -> None:
    """Rescale the last conv so the network's output has mean 0.5 and std 0.2 on ``frame``.

    A random decoder's output would otherwise sit at one end of [0, 1], where the clamp hides any difference.
    """
    from core.images import to_tensor

    last = [m for m in model.frame_network().modules() if isinstance(m, nn.Conv2d)][-1]
    with torch.no_grad():
        out = model.stylize(to_tensor(frame), code)
        scale = 0.2 / float(out.std())
        last.weight.mul_(scale)
        last.bias.mul_(scale).add_(0.5 - float(out.mean()) * scale)


@pytest.fixture(scope="session")
def spread() -> Callable:
    """:func:`spread_output`, for test modules (conftest is not importable by name)."""
    return spread_output


@pytest.fixture(scope="module")
def export_store(shared):
    """The shared search path, downloads off."""
    from models.registry import default_store

    s = default_store()
    s.allow_download = False
    return s


@pytest.fixture(scope="module")
def model_and_code(export_store) -> Callable[[str], tuple]:
    """``make(name)`` → (model, style code): microast real, adain/aesfa random (seeded, output spread)."""
    from export.verify import large_frames, sample_code

    def make(name: str):
        torch.set_num_threads(2)
        if name == "microast":
            from models.registry import create_model

            model = create_model("microast", store=export_store).eval()
            return model, sample_code(model, export_store, 256)
        torch.manual_seed(0)
        if name == "adain":
            from models.adain import AdaIN as cls
        else:
            from models.aesfa import AesFA as cls
        model = cls().eval()
        code = sample_code(model, export_store, 64)
        spread_output(model, large_frames(export_store, ((128, 72),))[0], code)
        return model, code

    return make
