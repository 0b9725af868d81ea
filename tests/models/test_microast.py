"""MicroAST with the official weights: sizes, determinism, style transfer, blending, strength, loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models.base import StyleCode
from core.errors import InputError
from models.errors import ModelError, WeightsError
from core.images import load_image
from models.microast import MicroAST
from models.registry import create_model, default_store


def official_microast():
    """The upstream .pth checkpoint of MicroAST (the bundled safetensors copy comes first in the registry)."""
    from models.registry import checkpoint_named

    return checkpoint_named("microast", "official")


SIZE = 192


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> dict[str, Path]:
    store = default_store()
    store.cache_dir = tmp_path_factory.mktemp("cache")
    store.allow_download = False
    spec = official_microast().files
    return {role: store.resolve(s) for role, s in spec.items()}


@pytest.fixture(scope="module")
def model(weight_files) -> MicroAST:
    return create_model("microast", files=weight_files, store=default_store())


@pytest.fixture(scope="module")
def content(content_path) -> torch.Tensor:
    return load_image(content_path, SIZE)


@pytest.fixture(scope="module")
def style(style_path) -> torch.Tensor:
    return load_image(style_path, SIZE)


@pytest.fixture(scope="module")
def code(model, style) -> StyleCode:
    return model.encode_style(style)


@pytest.fixture(scope="module")
def vgg():
    from models.vgg import VGG19Features

    return VGG19Features(last_tap="relu4_1")


def run(model: MicroAST, content: torch.Tensor, code: StyleCode, alpha: float = 1.0) -> torch.Tensor:
    with torch.inference_mode():
        return model.stylize(content, code, alpha)


def style_losses(vgg, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Per tap relu1_1..relu4_1, the squared distance of channel means plus stds (AdaIN's style loss)."""
    taps = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    with torch.inference_mode():
        a, b = vgg(image.clamp(0, 1), taps), vgg(style, taps)
    return torch.tensor(
        [
            F.mse_loss(a[t].mean((2, 3)), b[t].mean((2, 3))).item()
            + F.mse_loss(a[t].std((2, 3)), b[t].std((2, 3))).item()
            for t in taps
        ]
    )


def test_code_is_small_and_style_only(model, code):
    assert code.model == "microast"
    assert code.names == ["mean", "std", "filter_weight", "filter_bias"]
    assert all(t.shape == (2, 64, 1, 1) for t in code.tensors.values())
    assert bool((code.tensors["std"] > 0).all())
    frame_params = sum(p.numel() for p in model.frame_network().parameters())
    assert frame_params == 157_792 + 153_843  # content encoder + decoder (MANIFEST §2.4): no style part per frame


def test_deterministic(model, content, style, code):
    again = model.encode_style(style)
    for name in code.names:
        assert torch.equal(code.tensors[name], again.tensors[name])
    assert torch.equal(run(model, content, code), run(model, content, code))


@pytest.mark.parametrize("shape", [(67, 93), (64, 64), (101, 16), (130, 257)])
def test_output_has_the_input_size(model, content, code, shape):
    x = F.interpolate(content, size=shape, mode="bilinear", align_corners=False)
    out = run(model, x, code)
    assert out.shape == (1, 3, *shape)
    assert bool(torch.isfinite(out).all())


def test_crop_keeps_the_top_left_of_the_padded_output(model, content, code):
    # A size not divisible by 4 must give the same pixels as the full-stride size's top-left where the
    # receptive field does not reach the border: the crop neither shifts nor rescales the image.
    big = run(model, content[..., :128, :128], code)
    odd = run(model, content[..., :127, :125], code)
    assert odd.shape[-2:] == (127, 125)
    inner = (odd[..., 16:96, 16:96] - big[..., 16:96, 16:96]).abs().mean().item()
    assert inner < 0.02


def test_batch_equals_single(model, content, code):
    pair = torch.cat([content, content.flip(-1)])
    out = run(model, pair, code)
    assert torch.allclose(out[1:], run(model, content.flip(-1), code), atol=1e-5)


def test_style_is_applied(model, vgg, content, style, code):
    # Each tap's loss relative to the content image's: the colour/texture taps fall most, relu4_1 least.
    ratio = style_losses(vgg, run(model, content, code), style) / style_losses(vgg, content, style)
    assert bool((ratio < 0.5).all()) and ratio.mean() < 0.25, ratio


def test_blend_with_weights_one_zero_equals_the_first(model, content, style, code, shared):
    other = model.encode_style(load_image(shared / "images" / "styles" / "great_wave.jpg", SIZE))
    blended = StyleCode.blend([code, other], [1.0, 0.0])
    for name in code.names:
        assert torch.equal(blended.tensors[name], code.tensors[name])
    half = StyleCode.blend([code, other], [1.0, 1.0])
    a, b, h = run(model, content, code), run(model, content, other), run(model, content, half)
    assert torch.allclose(run(model, content, blended), a)
    # the half/half blend differs from both styles
    assert (h - a).abs().mean() > 0.01 and (h - b).abs().mean() > 0.01


def test_alpha_moves_monotonically_toward_the_content(model, vgg, content, style, code):
    alphas = (0.0, 0.25, 0.5, 0.75, 1.0)
    outs = [run(model, content, code, a) for a in alphas]
    assert torch.equal(outs[0], content)
    distance = [(o - content).abs().mean().item() for o in outs]
    assert all(d1 < d2 for d1, d2 in zip(distance, distance[1:])), distance
    losses = [style_losses(vgg, o, style).sum().item() for o in outs[::2]]
    assert all(l1 > l2 for l1, l2 in zip(losses, losses[1:])), losses


def test_upstream_feature_strength_agrees_at_full_style(weight_files, content, code, model):
    upstream = MicroAST.from_files(weight_files, strength="features")
    full = run(upstream, content, code, 1.0)
    assert torch.equal(full, run(model, content, code, 1.0))
    assert not torch.allclose(run(upstream, content, code, 0.5), run(model, content, code, 0.5), atol=0.01)
    with pytest.raises(ModelError, match="strength mode 'pixels'"):
        MicroAST(strength="pixels")


def test_frame_network_exports_with_dynamic_size(model, content, code):
    net = model.frame_network()
    dynamic = torch.export.Dim.DYNAMIC  # the crop's guard h <= 4*ceil(h/4) is true but unprovable for strict Dims
    args = (content[..., :64, :96].clone(), *code.tensors.values(), torch.tensor(0.8))
    program = torch.export.export(net, args, dynamic_shapes=({2: dynamic, 3: dynamic}, None, None, None, None, None))
    for shape in ((67, 93), (128, 100)):
        x = content[..., : shape[0], : shape[1]].clone()
        with torch.inference_mode():
            exported = program.module()(x, *code.tensors.values(), torch.tensor(0.8))
        assert exported.shape == (1, 3, *shape)
        assert torch.allclose(exported, run(model, x, code, 0.8), atol=1e-5)


def test_bad_inputs_are_refused(model, content, code):
    with pytest.raises(InputError, match="RGB"):
        model.stylize(content[:, :1], code)
    with pytest.raises(InputError, match="at least"):
        model.stylize(content[..., :8, :40], code)
    with pytest.raises(InputError, match="one style image at a time"):
        model.encode_style(torch.cat([content, content]))
    with pytest.raises(InputError, match="encoded for adain"):
        model.stylize(content, StyleCode("adain", dict(code.tensors)))


def test_loading_reports_missing_and_unexpected_keys(weight_files, tmp_path):
    state = torch.load(weight_files["modulator"], weights_only=True)
    state["weight1.0.conv.weight"] = state.pop("weight1.0.conv_layer.weight")
    renamed = tmp_path / "modulator.pth"
    torch.save(state, renamed)
    with pytest.raises(
        WeightsError, match=r"missing weight1\.0\.conv_layer\.weight.*unexpected weight1\.0\.conv\.weight"
    ):
        MicroAST.from_files({**weight_files, "modulator": renamed})


def test_loading_refuses_a_swapped_or_unreadable_file(weight_files, tmp_path):
    with pytest.raises(WeightsError, match="decoder checkpoint .* does not fit"):
        MicroAST.from_files({**weight_files, "decoder": weight_files["modulator"]})
    garbage = tmp_path / "garbage.pth.tar"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read MicroAST style_encoder checkpoint"):
        MicroAST.from_files({**weight_files, "style_encoder": garbage})
    state = torch.load(weight_files["modulator"], weights_only=True)
    state["bias2.0.conv_layer.bias"] = torch.zeros(32)
    reshaped = tmp_path / "modulator_32.pth"
    torch.save(state, reshaped)
    with pytest.raises(WeightsError, match=r"bias2\.0\.conv_layer\.bias has shape \(32,\), expected \(64,\)"):
        MicroAST.from_files({**weight_files, "modulator": reshaped})
    with pytest.raises(WeightsError, match="needs checkpoint files for decoder"):
        MicroAST.from_files({k: v for k, v in weight_files.items() if k != "decoder"})
