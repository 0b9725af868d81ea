"""AesFA: official checkpoint layout, strict loading, sizes, style codes and ONNX export.

No trained AesFA weights exist here, so these are structural tests on seeded random networks;
the images are real ones from the shared folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.aesfa import CODE_NAMES, AesFA, mix_frequencies
from models.base import StyleCode
from core.errors import InputError
from models.errors import ModelError, WeightsError
from core.images import read_image, resize_longest, to_tensor

#: parameter counts of the official networks (MANIFEST §4.3, default Config).
OFFICIAL_PARAMS = {"netE": 825_728, "netS": 825_728, "netG": 1_569_379}


def image(path: Path, longest: int) -> torch.Tensor:
    return to_tensor(resize_longest(read_image(path), longest))


@pytest.fixture(scope="module")
def model() -> AesFA:
    torch.manual_seed(0)
    return AesFA().eval()


@pytest.fixture(scope="module")
def content(content_path: Path) -> torch.Tensor:
    return image(content_path, 64)


@pytest.fixture(scope="module")
def styles(shared: Path) -> list[torch.Tensor]:
    return [image(shared / "images" / "styles" / name, 64) for name in ("starry_night.jpg", "the_scream.jpg")]


def official_dict(model: AesFA) -> dict:
    """What the official ``model_save`` writes: the three state dicts plus optimiser states."""
    return {
        "netE": model.netE.state_dict(),
        "netS": model.netS.state_dict(),
        "netG": model.netG.state_dict(),
        "optim_G": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
    }


def test_parameter_counts_match_official(model: AesFA) -> None:
    counts = {net: sum(p.numel() for p in getattr(model, net).parameters()) for net in OFFICIAL_PARAMS}
    assert counts == OFFICIAL_PARAMS


def test_official_key_layout(model: AesFA) -> None:
    """A few keys as the official blocks name them (Sequential indices included)."""
    keys = set(model.netG.state_dict())
    for key in (
        "AdaOctConv1_1.kernelPredictor_h.pointwise.1.weight",
        "AdaOctConv2_1.AdaConv_l.conv.bias",
        "AdaOctConv3_1.OctConv.H2H.weight",
        "oct_conv_aftup_1.conv_h.weight",
        "OctConv3_2.convl.weight",
        "conv4.bias",
    ):
        assert key in keys
    assert {"OctConv1_1.convh.weight", "OctConv1_2.L2H.weight", "OctConv2_1.H2H.weight"} <= set(model.netE.state_dict())
    assert "OctConv2_1.L2H.weight" not in model.netE.state_dict()  # depthwise: no band exchange


def test_main_pth_round_trip(model: AesFA, content: torch.Tensor, styles: list[torch.Tensor], tmp_path: Path) -> None:
    path = tmp_path / "main.pth"
    torch.save(official_dict(model), path)
    loaded = AesFA.from_files({"main": path})
    for net in ("netE", "netS", "netG"):
        for (k, a), b in zip(getattr(model, net).state_dict().items(), getattr(loaded, net).state_dict().values()):
            assert torch.equal(a, b), k
    with torch.no_grad():
        expected = model.stylize(content, model.encode_style(styles[0]))
        got = loaded.stylize(content, loaded.encode_style(styles[0]))
    assert torch.equal(expected, got)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d["netG"].pop("conv4.weight"), "missing netG.conv4.weight"),
        (lambda d: d["netE"].__setitem__("extra.weight", torch.zeros(1)), "unexpected netE.extra.weight"),
        (
            lambda d: d["netS"].__setitem__("conv.weight", torch.zeros(64, 3, 3, 3)),
            r"netS.conv.weight has shape \(64, 3, 3, 3\)",
        ),
        (lambda d: d.pop("netS"), "not an AesFA main.pth"),
    ],
)
def test_main_pth_mismatch_is_a_weights_error(model: AesFA, tmp_path: Path, damage, message: str) -> None:
    state = official_dict(model)
    state = {k: dict(v) if k.startswith("net") else v for k, v in state.items()}
    damage(state)
    path = tmp_path / "main.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=message):
        AesFA.from_files({"main": path})


def test_unreadable_or_missing_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "main.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read AesFA checkpoint .*not a readable PyTorch checkpoint"):
        AesFA.from_files({"main": bad})
    with pytest.raises(WeightsError, match="does not exist"):
        AesFA.from_files({"main": tmp_path / "absent.pth"})
    broken = tmp_path / "ours.safetensors"
    broken.write_bytes(b"\x00" * 16)
    with pytest.raises(WeightsError, match="safetensors"):
        AesFA.from_files({"main": broken})


def test_safetensors_round_trip(
    model: AesFA, content: torch.Tensor, styles: list[torch.Tensor], tmp_path: Path
) -> None:
    path = model.save_safetensors(tmp_path / "aesfa.safetensors")
    assert path.stat().st_size < 10_000_000
    loaded = AesFA.from_files({"main": path})
    for net in ("netE", "netS", "netG"):
        for (k, a), b in zip(getattr(model, net).state_dict().items(), getattr(loaded, net).state_dict().values()):
            assert torch.equal(a.half().float(), b), k
    with torch.no_grad():
        a = model.stylize(content, model.encode_style(styles[0]))
        b = loaded.stylize(content, loaded.encode_style(styles[0]))
    assert (a - b).abs().max() < 0.05  # fp16 weights: close, not equal


def test_registry_reports_missing_weights(store) -> None:
    from models.registry import create_model

    with pytest.raises(WeightsError, match="main.pth not found"):
        create_model("aesfa", checkpoint="official", store=store)  # (ours ships in the package)


@pytest.mark.parametrize("hw", [(64, 80), (37, 51), (16, 23)])
def test_output_has_the_content_size(model: AesFA, styles: list[torch.Tensor], content_path: Path, hw) -> None:
    x = torch.nn.functional.interpolate(image(content_path, 128), size=hw, mode="area")
    with torch.no_grad():
        out = model.stylize(x, model.encode_style(styles[0]))
    assert out.shape == (1, 3, *hw)
    assert torch.isfinite(out).all()


def test_too_small_or_wrong_inputs(model: AesFA, styles: list[torch.Tensor]) -> None:
    with pytest.raises(InputError, match="at least 16 px"):
        model.encode_style(torch.rand(1, 3, 12, 40))
    with pytest.raises(InputError, match="RGB tensor"):
        model.stylize(torch.rand(1, 1, 32, 32), model.encode_style(styles[0]))


def test_code_layout(model: AesFA, styles: list[torch.Tensor]) -> None:
    code = model.encode_style(styles[0])
    assert code.model == "aesfa" and code.names == list(CODE_NAMES)
    assert not any(t.requires_grad for t in code.tensors.values())
    # stage 1 is depthwise over 128 channels per band, stage 3 groups of 4 over 32 (group_div 1, 2, 4)
    assert code.tensors["d1_h_spatial"].shape == (1, 128, 1, 3, 3)
    assert code.tensors["d3_l_pointwise"].shape == (1, 32, 4, 1, 1)
    assert code.tensors["d2_h_bias"].shape == (1, 64)


def test_blended_code_is_the_code_of_blended_features(model: AesFA, styles: list[torch.Tensor]) -> None:
    """Kernel prediction is linear in the pooled style features, so blending codes is meaningful."""
    with torch.no_grad():
        f1, f2 = (model.style_features(s) for s in styles)
        blended = StyleCode.blend([model.code_from_features(f1), model.code_from_features(f2)], [1.0, 3.0])
        direct = model.code_from_features((0.25 * f1[0] + 0.75 * f2[0], 0.25 * f1[1] + 0.75 * f2[1]))
    for name in CODE_NAMES:
        torch.testing.assert_close(blended.tensors[name], direct.tensors[name], rtol=1e-4, atol=1e-5)


def test_mix_frequencies(model: AesFA, content: torch.Tensor, styles: list[torch.Tensor]) -> None:
    """High-band kernels from one style, low-band from the other: the official style_blending."""
    with torch.no_grad():
        fa, fb = (model.style_features(s) for s in styles)
        code_a, code_b = model.code_from_features(fa), model.code_from_features(fb)
        mixed = mix_frequencies(code_a, code_b)
        official = model.code_from_features((fa[0], fb[1]))
        for name in CODE_NAMES:
            source = code_a if "_h_" in name else code_b
            assert mixed.tensors[name] is source.tensors[name]
            torch.testing.assert_close(mixed.tensors[name], official.tensors[name])
        outs = [model.stylize(content, c) for c in (code_a, code_b, mixed)]
    assert not torch.allclose(outs[2], outs[0]) and not torch.allclose(outs[2], outs[1])


def test_frame_network_equals_stylize_and_official_path(
    model: AesFA, content: torch.Tensor, styles: list[torch.Tensor]
) -> None:
    code = model.encode_style(styles[0])
    with torch.no_grad():
        by_stylize = model.stylize(content, code, 0.6)
        by_network = model.frame_network()(content, *code.tensors.values(), torch.tensor(0.6))
        assert torch.equal(by_stylize, by_network)
        # alpha = 1 is the official composition: netS → kernels, netE → netG, no blending
        from models.aesfa import denormalize, normalize

        kernels = model.netG.predict_kernels(model.netS.pool(model.netS(normalize(styles[0][..., :32, :40]))))
        official = denormalize(model.netG.forward_bands(model.netE(normalize(content[..., :40, :48])), kernels)[0])
        ours = model.stylize(content[..., :40, :48], model.encode_style(styles[0][..., :32, :40]), 1.0)
    torch.testing.assert_close(ours, official)


def test_alpha_zero_ignores_the_style(model: AesFA, content: torch.Tensor, styles: list[torch.Tensor]) -> None:
    codes = [model.encode_style(s) for s in styles]
    with torch.no_grad():
        at0 = [model.stylize(content, c, 0.0) for c in codes]
        at1 = [model.stylize(content, c, 1.0) for c in codes]
    assert torch.equal(at0[0], at0[1])
    # random-init networks respond weakly to the style, but they do respond
    assert (at1[0] - at1[1]).abs().max() > 1e-6


def test_per_sample_codes_match_single_runs(model: AesFA, content: torch.Tensor, styles: list[torch.Tensor]) -> None:
    """A batch of styles (training) gives each content its own kernels."""
    batch_content = torch.cat([content, content.flip(-1)])
    batch_style = torch.cat([s[..., :32, :32] for s in styles])
    with torch.no_grad():
        code = model.code_from_features(model.style_features(batch_style))
        together = model.stylize(batch_content, code)
        single = [model.stylize(batch_content[i : i + 1], model.encode_style(batch_style[i : i + 1])) for i in range(2)]
    torch.testing.assert_close(together, torch.cat(single), rtol=1e-4, atol=1e-5)


def test_onnx_export_dynamic_size(model: AesFA, styles: list[torch.Tensor], content_path: Path, tmp_path: Path) -> None:
    """The project's exporter (uint8 BGR frame graph) with two sizes, one not a multiple of 8."""
    import onnxruntime as ort

    from export.onnx import ALPHA_INPUT, FRAME_INPUT, FrameGraph, export_onnx

    code = model.encode_style(styles[0])
    path = tmp_path / "aesfa.onnx"
    export_onnx(model, code, path, sample_hw=(64, 80))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    graph = FrameGraph(model.frame_network()).eval()
    for side in (80, 101):
        frame = resize_longest(read_image(content_path), side)[None]
        feed = {
            FRAME_INPUT: frame,
            ALPHA_INPUT: np.array(0.8, dtype=np.float32),
            **{k: v.numpy() for k, v in code.tensors.items()},
        }
        got = session.run(None, feed)[0]
        with torch.no_grad():
            expected = graph(torch.from_numpy(frame), *code.tensors.values(), torch.tensor(0.8)).numpy()
        assert got.shape == frame.shape
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_image_strength_mode(model: AesFA, content: torch.Tensor, styles: list[torch.Tensor]) -> None:
    """strength="image": alpha 0 returns the content, alpha 1 the same image as the feature mode."""
    code = model.encode_style(styles[0])
    image_mode = AesFA(strength="image")
    image_mode.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(image_mode.stylize(content, code, 0.0), content)
        torch.testing.assert_close(image_mode.stylize(content, code, 1.0), model.stylize(content, code, 1.0))
        half = image_mode.stylize(content, code, 0.5)
    torch.testing.assert_close(half, 0.5 * content + 0.5 * model.stylize(content, code, 1.0))
    with pytest.raises(ModelError, match="strength mode"):
        AesFA(strength="pixels")
