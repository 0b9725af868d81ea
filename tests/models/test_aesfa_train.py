"""AesFA training task: loss definitions, a few CPU steps on real images, export → load → run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.errors import InputError
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
    return TrainConfig(content_dir=dirs["content"], style_dir=dirs["style"], out=tmp_path / "run", iters=2,
                       batch=2, size=64, num_workers=0, sample_every=0, log_every=1, checkpoint_minutes=60)


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
    from models.images import read_image, resize_longest, to_tensor

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
