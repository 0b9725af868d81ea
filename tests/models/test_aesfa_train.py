"""AesFA training task: loss definitions, a few CPU steps on real images, export → load → run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.errors import InputError
from models.training.aesfa_train import efdm, efdm_per_sample, hardest_negatives
from models.training.common import TrainConfig, create_task, read_loss_log, train

N_IMAGES = 4


@pytest.fixture()
def config(shared: Path, tmp_path: Path) -> TrainConfig:
    """A tiny run: a few real training images (linked, not copied), 64 px, batch 2, no workers."""
    dirs = {}
    for kind in ("content", "style"):
        folder = tmp_path / kind
        folder.mkdir()
        for src in sorted((shared / "datasets" / kind).glob("*.jpg"))[:N_IMAGES]:
            (folder / src.name).symlink_to(src)
        dirs[kind] = folder
    return TrainConfig(
        content_dir=dirs["content"],
        style_dir=dirs["style"],
        out=tmp_path / "run",
        iters=2,
        batch=2,
        size=64,
        num_workers=0,
        sample_every=0,
        log_every=1,
        checkpoint_minutes=60,
    )


def test_efdm_is_the_official_gather_formulation() -> None:
    """MSE between sorted channels equals the official efdm_single (targets gathered at the output's ranks)."""
    torch.manual_seed(0)
    out, target = torch.randn(2, 5, 6, 7), torch.randn(2, 5, 6, 7) * 3 + 1
    ranks = out.flatten(2).sort(-1).indices.argsort(-1)
    reference = torch.nn.functional.mse_loss(out.flatten(2), target.flatten(2).sort(-1).values.gather(-1, ranks))
    torch.testing.assert_close(efdm(out, target), reference)
    shuffled = out.flatten(2)[..., torch.randperm(42)].reshape(out.shape)
    assert efdm(shuffled, out) == 0  # same distribution per channel, different layout
    assert efdm_per_sample(out, target).shape == (2,)


def test_hardest_negative_is_the_closest_other_style() -> None:
    torch.manual_seed(0)
    styles = torch.randn(3, 4, 8, 8) * torch.tensor([1.0, 5.0, 1.2]).view(3, 1, 1, 1)
    outputs = styles.clone()
    # sample 0's closest other style is 2 (similar spread); 1's is 2; 2's is 0
    assert hardest_negatives([outputs], [styles]).tolist() == [2, 2, 0]


def test_size_must_suit_the_octave_strides(config: TrainConfig) -> None:
    config.size = 60
    with pytest.raises(InputError, match="multiple of 8"):
        create_task("aesfa", config)


def test_losses_are_finite_and_fall(config: TrainConfig) -> None:
    """Adam on one fixed batch of real crops: every loss finite, the total falls."""
    from models.training.data import make_loader

    config.lr = 1e-3
    task, config = create_task("aesfa", config)
    content, style = next(iter(make_loader(config)))
    optimizer = torch.optim.Adam(task.trainable().parameters(), lr=config.lr)
    totals = []
    for _ in range(6):
        losses = task.losses(content, style)
        assert {"total", "content", "style", "contrast"} <= set(losses)
        assert all(torch.isfinite(v) for v in losses.values())
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        totals.append(float(losses["total"].detach()))
    assert min(totals[-3:]) < 0.8 * totals[0], totals


def test_train_exports_weights_aesfa_loads(config: TrainConfig, content_path: Path, style_path: Path) -> None:
    from models.aesfa import AesFA
    from core.images import read_image, resize_longest, to_tensor

    task, config = create_task("aesfa", config)
    path = train(task, config)
    assert path.name == "aesfa.safetensors" and path.stat().st_size < 10_000_000
    rows = read_loss_log(config.out / "losses.csv")
    assert [r["step"] for r in rows] == [1, 2]
    model = AesFA.from_files({"main": path})
    content = to_tensor(resize_longest(read_image(content_path), 61))
    style = to_tensor(resize_longest(read_image(style_path), 64))
    with torch.no_grad():
        out = model.stylize(content, model.encode_style(style))
        trained = task.model.eval().stylize(content, task.model.encode_style(style))
    assert out.shape == content.shape and torch.isfinite(out).all()
    assert (out - trained).abs().max() < 0.05  # the fp16 export runs like the trained fp32 model


def test_losses_sort_once_and_equal_the_plain_formulas(config: TrainConfig) -> None:
    """The loss reuses each sort; it must equal the per-term formulas (efdm, efdm_per_sample, s[neg]), gradients too."""
    from models.aesfa import denormalize
    from models.training.aesfa_train import CONTENT_TAP, CONTRAST_WEIGHT, VGG_TAPS, band_pairs
    from models.training.data import make_loader

    config.batch = 3
    task, config = create_task("aesfa", config)
    content, style = next(iter(make_loader(config)))
    got = task.losses(content, style)
    grad_got = torch.autograd.grad(got["total"], task.model.netG.parameters(), allow_unused=True)

    m = task.model
    out_n, style_s = task._stylize(content, style)
    feats = task._vgg(denormalize(out_n))
    with torch.no_grad():
        target_c, target_s = task._vgg(content)[CONTENT_TAP], task._vgg(style)
    content_loss = torch.nn.functional.mse_loss(feats[CONTENT_TAP], target_c)
    style_loss = sum(efdm(feats[k], target_s[k]) for k in VGG_TAPS)
    neg = hardest_negatives([feats[k] for k in VGG_TAPS], [target_s[k] for k in VGG_TAPS])
    out_s = m.netS.features(out_n)
    pairs = band_pairs(style_s[:2], m.netE.features(out_n)) + band_pairs(style_s, out_s + [m.netS.pool(out_s[-1])])
    pos = sum(efdm_per_sample(g, s) for s, g in pairs)
    negative = sum(efdm_per_sample(g, s[neg]) for s, g in pairs)
    contrast = (pos / negative.clamp_min(1e-8)).sum()
    total = content_loss + 10.0 * style_loss + CONTRAST_WEIGHT * contrast
    for name, value in (("content", content_loss), ("style", style_loss), ("contrast", contrast), ("total", total)):
        torch.testing.assert_close(got[name], value, rtol=1e-5, atol=1e-6, msg=name)
    grad_ref = torch.autograd.grad(total, task.model.netG.parameters(), allow_unused=True)
    for a, b in zip(grad_got, grad_ref):
        if a is not None or b is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
