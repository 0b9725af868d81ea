"""Gatys optimisation on the real VGG-19 weights, at 64 px so each step is cheap."""

from __future__ import annotations

import pytest
import torch

from core.errors import InputError
from models.gatys import Gatys, GatysConfig, gram_matrix
from core.images import load_image

SIZE = 64


@pytest.fixture(scope="module")
def gatys() -> Gatys:
    return Gatys()


@pytest.fixture(scope="module")
def images(content_path, style_path) -> tuple[torch.Tensor, torch.Tensor]:
    return load_image(content_path, SIZE), load_image(style_path, SIZE)


def test_lbfgs_lowers_total_loss_by_90_percent(gatys, images):
    content, style = images
    steps: list[int] = []
    result = gatys.optimize(
        content, style, GatysConfig(iterations=40, early_stop=0.0), progress=lambda step, losses: steps.append(step)
    )
    first, best = result.history[0]["total"], min(h["total"] for h in result.history)
    assert best < 0.1 * first, f"total loss only fell from {first:.3g} to {best:.3g}"
    assert result.history[-1]["style"] < 0.2 * result.history[0]["style"]
    assert set(result.history[0]) == {"content", "style", "tv", "total"}
    assert steps == list(range(1, 41)) and result.iterations == 40 and result.stopped == "done"
    # Output: content's size, in [0, 1], and no longer the content image.
    assert result.image.shape == content.shape
    assert 0.0 <= float(result.image.min()) and float(result.image.max()) <= 1.0
    assert float((result.image - content).abs().mean()) > 0.02


def test_should_stop_cancels_early(gatys, images):
    content, style = images
    calls = []

    def stop_after_five() -> bool:
        calls.append(1)
        return len(calls) > 5

    result = gatys.optimize(content, style, GatysConfig(iterations=50), should_stop=stop_after_five)
    assert result.stopped == "cancelled"
    assert result.iterations == 5 and len(result.history) == 5
    assert result.image.shape == content.shape


def test_noise_init_is_seeded(gatys, images):
    content, style = images
    config = GatysConfig(iterations=3, init="noise", seed=7)
    a = gatys.optimize(content, style, config).image
    b = gatys.optimize(content, style, config).image
    c = gatys.optimize(content, style, GatysConfig(iterations=3, init="noise", seed=8)).image
    torch.testing.assert_close(a, b)
    assert float((a - c).abs().mean()) > 0.01


def test_adam_and_style_init_lower_loss(gatys, images):
    content, style = images
    result = gatys.optimize(content, style, GatysConfig(iterations=15, optimizer="adam", init="style", lr=0.1))
    totals = [h["total"] for h in result.history]
    assert min(totals[-3:]) < 0.7 * totals[0]


def test_max_size_optimises_smaller_and_returns_content_size(gatys, images):
    content, style = images
    result = gatys.optimize(content, style, GatysConfig(iterations=2, max_size=32))
    assert max(result.size) == 32
    assert result.image.shape == content.shape


def test_early_stop_ends_a_stalled_run(gatys, images):
    content, style = images
    # A threshold no real run can meet: the run must stop right after the first window.
    result = gatys.optimize(content, style, GatysConfig(iterations=50, early_stop=10.0, early_stop_window=3))
    assert result.stopped == "converged" and result.iterations == 4


def test_gram_matrix_is_normalised_by_size():
    features = torch.ones(1, 4, 8, 8)
    torch.testing.assert_close(gram_matrix(features), torch.full((1, 4, 4), 1.0 / 4))


@pytest.mark.parametrize(
    "change",
    [
        {"optimizer": "sgd"},
        {"init": "zeros"},
        {"iterations": 0},
        {"style_layers": {"relu9_1": 1.0}},
        {"style_weight": -1.0},
    ],
)
def test_bad_config_is_an_input_error(gatys, images, change):
    content, style = images
    with pytest.raises(InputError):
        gatys.optimize(content, style, GatysConfig(**change))


def test_created_through_the_registry():
    from models.registry import create_model

    model = create_model("gatys")
    assert isinstance(model, Gatys) and model.device.type == "cpu"
