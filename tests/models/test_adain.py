"""AdaIN: the operation against its definition on real VGG features, masks, blending, and both checkpoint kinds.

Only the loader and plumbing tests use a randomly initialised decoder; nothing here judges stylisation.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.adain import (
    AdaIN,
    CaffeVGGEncoder,
    adain,
    feature_stats,
    load_our_decoder,
    make_decoder,
    masked_adain,
    save_our_decoder,
)
from models.base import StyleCode
from models.errors import WeightsError
from core.images import load_image


@pytest.fixture(scope="module")
def encoder() -> CaffeVGGEncoder:
    return CaffeVGGEncoder()


@pytest.fixture(scope="module")
def model(encoder) -> AdaIN:
    torch.manual_seed(0)
    return AdaIN(encoder, make_decoder())


@pytest.fixture(scope="module")
def images(shared: Path) -> dict[str, torch.Tensor]:
    root = shared / "images"
    return {
        "content": load_image(root / "content" / "chicago.jpg", 96),
        "starry": load_image(root / "styles" / "starry_night.jpg", 96),
        "wave": load_image(root / "styles" / "great_wave.jpg", 96),
    }


@pytest.fixture(scope="module")
def codes(model, images) -> dict[str, StyleCode]:
    with torch.no_grad():
        return {k: model.encode_style(images[k]) for k in ("starry", "wave")}


def test_adain_output_takes_the_style_statistics(encoder, images):
    with torch.no_grad():
        content, style = encoder(images["content"]), encoder(images["starry"])
    out = adain(content, *feature_stats(style))
    out_mean, out_std = feature_stats(out)
    style_mean, style_std = feature_stats(style)
    c_mean, c_std = feature_stats(content)
    live = (c_std.flatten() > 1.0) & (style_std.flatten() > 1.0)  # an all-zero channel has no spread to rescale
    assert live.sum() > 400
    torch.testing.assert_close(out_mean, style_mean, rtol=1e-4, atol=1e-2)
    torch.testing.assert_close(out_std.flatten()[live], style_std.flatten()[live], rtol=1e-3, atol=1e-2)
    # and keeps the content's normalised layout: per channel an increasing affine map of the content
    torch.testing.assert_close(
        ((out - out_mean) / out_std)[:, live], ((content - c_mean) / c_std)[:, live], rtol=1e-3, atol=1e-3
    )
    assert (out_mean - c_mean).abs().mean() > 10  # the statistics really changed (Caffe-scale features)


def test_statistics_do_not_overflow_in_fp16(encoder, images):
    with torch.no_grad():
        feat = encoder(images["starry"])
    assert float(feat.flatten(2).var(-1).max()) > 65504  # this is why feature_stats works in fp32
    mean16, std16 = feature_stats(feat.half())
    mean32, std32 = feature_stats(feat)
    assert mean16.dtype == torch.float16 and torch.isfinite(std16).all()
    torch.testing.assert_close(std16.float(), std32, rtol=2e-3, atol=0.5)


def test_style_code_is_the_relu4_1_mean_and_std(model, codes, encoder, images):
    code = codes["starry"]
    assert code.model == "adain" and code.names == ["mean", "std"]
    assert code.tensors["mean"].shape == code.tensors["std"].shape == (1, 512, 1, 1)
    with torch.no_grad():
        mean, std = feature_stats(encoder(images["starry"]))
    torch.testing.assert_close(code.tensors["mean"], mean)
    torch.testing.assert_close(code.tensors["std"], std)


def test_alpha_zero_decodes_the_content_features(model, codes, images):
    seen = []
    hook = model.decoder.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            for alpha in (0.0, 0.5, 1.0):
                model.stylize(images["content"], codes["starry"], alpha)
            h, w = images["content"].shape[-2:]
            content_feat = model.encoder(
                torch.nn.functional.pad(images["content"], (0, (-w) % 8, 0, (-h) % 8), mode="reflect")
            )
    finally:
        hook.remove()
    scale = model.feature_scale
    torch.testing.assert_close(seen[0], content_feat * scale)
    full = adain(content_feat, *codes["starry"].tensors.values()) * scale
    torch.testing.assert_close(seen[2], full, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(seen[1], 0.5 * seen[0] + 0.5 * seen[2], rtol=1e-4, atol=1e-4)


def test_blending_codes_interpolates_adain_outputs(encoder, codes, images):
    with torch.no_grad():
        feat = encoder(images["content"])
    blended = StyleCode.blend([codes["starry"], codes["wave"]], [3.0, 7.0])  # normalised to 0.3 / 0.7
    direct = adain(feat, *blended.tensors.values())
    mixed = 0.3 * adain(feat, *codes["starry"].tensors.values()) + 0.7 * adain(feat, *codes["wave"].tensors.values())
    torch.testing.assert_close(direct, mixed, rtol=1e-4, atol=1e-2)
    assert (direct - adain(feat, *codes["starry"].tensors.values())).abs().mean() > 1.0


def test_masked_adain_gives_each_region_its_style(encoder, codes, images):
    with torch.no_grad():
        feat = encoder(images["content"])
    mask = torch.zeros(1, 1, *feat.shape[-2:])
    half = feat.shape[-1] // 2
    mask[..., :half] = 1.0
    out = masked_adain(feat, [codes["starry"], codes["wave"]], mask)
    for region, code in ((out[..., :half], codes["starry"]), (out[..., half:], codes["wave"])):
        mean, std = feature_stats(region)
        live = feature_stats(feat[..., :half] if code is codes["starry"] else feat[..., half:])[1].flatten() > 1.0
        torch.testing.assert_close(mean, code.tensors["mean"], rtol=1e-4, atol=1e-2)
        torch.testing.assert_close(std.flatten()[live], code.tensors["std"].flatten()[live], rtol=1e-3, atol=1e-2)


def test_stylize_masked_plumbing(model, codes, images):
    content = images["content"][..., :53, :70]  # odd sizes: padded inside, cropped back
    with torch.no_grad():
        ones = model.stylize_masked(content, [codes["starry"], codes["wave"]], torch.ones(1, 1, 53, 70), 0.8)
        plain = model.stylize(content, codes["starry"], 0.8)
        split = model.stylize_masked(content, [codes["starry"], codes["wave"]], torch.rand(1, 1, 53, 70), 0.8)
    assert ones.shape == split.shape == content.shape
    torch.testing.assert_close(ones, plain, rtol=1e-4, atol=1e-4)


# -- checkpoints --------------------------------------------------------------------------------

#: naoto0804/pytorch-AdaIN net.py layouts, written out independently of models.adain:
#: (Sequential index, in channels, out channels, kernel) of every conv.
OFFICIAL_VGG_CONVS = [
    (0, 3, 3, 1),
    (2, 3, 64, 3),
    (5, 64, 64, 3),
    (9, 64, 128, 3),
    (12, 128, 128, 3),
    (16, 128, 256, 3),
    (19, 256, 256, 3),
    (22, 256, 256, 3),
    (25, 256, 256, 3),
    (29, 256, 512, 3),
    (32, 512, 512, 3),
    (35, 512, 512, 3),
    (38, 512, 512, 3),
    (42, 512, 512, 3),
    (45, 512, 512, 3),
    (48, 512, 512, 3),
    (51, 512, 512, 3),
]
OFFICIAL_DECODER_CONVS = [
    (1, 512, 256, 3),
    (5, 256, 256, 3),
    (8, 256, 256, 3),
    (11, 256, 256, 3),
    (14, 256, 128, 3),
    (18, 128, 128, 3),
    (21, 128, 64, 3),
    (25, 64, 64, 3),
    (28, 64, 3, 3),
]


def official_state(convs) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    state = {}
    for index, cin, cout, k in convs:
        state[f"{index}.weight"] = torch.randn(cout, cin, k, k, generator=gen) * 0.05
        state[f"{index}.bias"] = torch.randn(cout, generator=gen) * 0.05
    return state


@pytest.fixture()
def official_files(tmp_path: Path) -> dict[str, Path]:
    files = {"vgg": tmp_path / "vgg_normalised.pth", "decoder": tmp_path / "decoder.pth"}
    torch.save(official_state(OFFICIAL_VGG_CONVS), files["vgg"])
    torch.save(official_state(OFFICIAL_DECODER_CONVS), files["decoder"])
    return files


def test_official_checkpoint_layout_loads(official_files, images):
    model = AdaIN.from_files(official_files)
    vgg = torch.load(official_files["vgg"], weights_only=True)
    dec = torch.load(official_files["decoder"], weights_only=True)
    encoder_state = model.encoder.layers.state_dict()
    for index, *_ in OFFICIAL_VGG_CONVS[:10]:  # up to conv4_1
        assert torch.equal(encoder_state[f"{index}.weight"], vgg[f"{index}.weight"])
    decoder_state = model.decoder.state_dict()
    assert set(decoder_state) == set(dec)
    for key, value in dec.items():
        assert torch.equal(decoder_state[key], value)
    assert model.feature_scale == 1.0  # the normalised VGG's features go to the decoder unscaled
    with torch.no_grad():
        feat = model.encoder(torch.rand(1, 3, 70, 70))
        out = model.stylize(images["content"][..., :61, :77], model.encode_style(images["starry"]), 1.0)
    assert feat.shape == (1, 512, 9, 9)  # reflection padding keeps sizes; ceil-mode pools: 70→35→18→9
    assert out.shape == (1, 3, 61, 77)


def test_official_checkpoint_with_wrong_keys_is_refused(official_files):
    dec = torch.load(official_files["decoder"], weights_only=True)
    dec["28.weight"] = torch.zeros(3, 32, 3, 3)
    torch.save(dec, official_files["decoder"])
    with pytest.raises(WeightsError, match=r"28\.weight has shape"):
        AdaIN.from_files(official_files)
    vgg = torch.load(official_files["vgg"], weights_only=True)
    del vgg["29.weight"]
    torch.save(vgg, official_files["vgg"])
    with pytest.raises(WeightsError, match=r"missing 29\.weight"):
        AdaIN.from_files(official_files)
    with pytest.raises(WeightsError, match="roles vgg\\+decoder"):
        AdaIN.from_files({"vgg": official_files["vgg"]})


def test_registry_checks_official_files_by_hash(official_files, store):
    from models.registry import create_model

    with pytest.raises(WeightsError, match="is not vgg_normalised.pth .*git blob 18a78387"):
        create_model("adain", store=store, files=official_files)


def test_missing_weights_give_the_clear_error(store):
    from models.registry import create_model

    with pytest.raises(WeightsError, match=r"vgg_normalised.pth not found \(downloads are off\).*Download https://"):
        create_model("adain", checkpoint="official", store=store)  # (ours ships in the package)


def test_our_decoder_round_trips_through_safetensors(tmp_path, model, images, codes):
    path = save_our_decoder(model.decoder, tmp_path / "adain.safetensors")
    assert path.stat().st_size < 10e6
    loaded = AdaIN.from_files({"decoder": path})
    assert isinstance(loaded.encoder, CaffeVGGEncoder) and loaded.feature_scale == model.feature_scale
    for key, value in model.decoder.state_dict().items():
        assert torch.equal(loaded.decoder.state_dict()[key], value.half().float())
    with torch.no_grad():
        out = loaded.stylize(images["content"], codes["starry"], 1.0)
    assert out.shape == images["content"].shape


def test_foreign_safetensors_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"1.weight": torch.zeros(256, 512, 3, 3)}, str(path), metadata={"model": "microast"})
    with pytest.raises(WeightsError, match="not an AdaIN decoder"):
        load_our_decoder(path)
    path.write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        AdaIN.from_files({"decoder": path})
