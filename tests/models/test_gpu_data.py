"""On-device training data: crops stay inside each image, flips mirror, jitter keeps the range, draws are seeded."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.training.data import SCALE_RANGE
from models.training.gpu_data import DeviceCorpus, color_jitter, device_generator, fit_image

SIZES = ((200, 240), (240, 200), (200, 200))  # (h, w); sides < 256 so a pixel's value can be its x coordinate


@pytest.fixture()
def ramps(tmp_path: Path) -> DeviceCorpus:
    """Images whose red channel is the column index and green the row index, written as PNG and decoded."""
    for i, (h, w) in enumerate(SIZES):
        yy, xx = np.mgrid[0:h, 0:w]
        bgr = np.stack([np.full((h, w), 128), yy, xx], -1).astype(np.uint8)
        cv2.imwrite(str(tmp_path / f"r{i}.png"), bgr)
    return DeviceCorpus.from_folder(tmp_path, "cpu", short_side=200, max_long=240, threads=2)


def test_folder_is_decoded_into_one_edge_replicated_canvas(ramps: DeviceCorpus) -> None:
    assert ramps.images.shape == (3, 3, 240, 240) and ramps.images.dtype == torch.uint8
    assert ramps.sizes.tolist() == [list(map(float, s)) for s in SIZES]
    wide = ramps.images[0]  # 200 × 240: rows below 200 repeat row 199
    assert torch.equal(wide[:, 199:, :], wide[:, 199:200, :].expand(-1, 41, -1))
    assert int(wide[0, 0, 239]) == 239 and int(wide[1, 150, 0]) == 150  # red = x, green = y


def test_crops_lie_inside_their_image_and_span_the_drawn_scale(ramps: DeviceCorpus) -> None:
    size = 64
    g = device_generator("cpu", 0)
    index = torch.arange(3).repeat(20)
    theta = ramps.boxes(index, g)
    crops = ramps.crops(index, theta, size) * 255.0
    lo_side, hi_side = 200 / SCALE_RANGE[1], 240 / SCALE_RANGE[0]
    mirrored = 0
    for crop, i, t in zip(crops, index.tolist(), theta):
        h, w = SIZES[i]
        x, y = crop[0], crop[1]  # red: source column, green: source row
        assert float(x.min()) >= -0.01 and float(x.max()) <= w - 1 + 0.01
        assert float(y.min()) >= -0.01 and float(y.max()) <= h - 1 + 0.01
        step = torch.diff(x[size // 2])
        flipped = bool(t[0, 0] < 0)
        mirrored += flipped
        # strictly monotonic along a row: no sample fell into the replicated border
        assert bool((step < 0).all()) if flipped else bool((step > 0).all())
        span = float(x[size // 2].max() - x[size // 2].min()) * size / (size - 1)
        assert lo_side * 0.95 <= span <= hi_side * 1.05
        assert float(y[:, size // 2].max() - y[:, size // 2].min()) * size / (size - 1) == pytest.approx(span, rel=0.03)
    assert 10 <= mirrored <= 50  # about half of 60


def test_batches_are_a_function_of_the_seed(ramps: DeviceCorpus) -> None:
    a = ramps.batch(4, 32, device_generator("cpu", 7), jitter=0.1)
    b = ramps.batch(4, 32, device_generator("cpu", 7), jitter=0.1)
    c = ramps.batch(4, 32, device_generator("cpu", 8), jitter=0.1)
    assert a.shape == (4, 3, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)


def test_color_jitter_keeps_the_range_and_zero_strength_changes_nothing() -> None:
    x = torch.rand(6, 3, 16, 16)
    out = color_jitter(x, 0.1, device_generator("cpu", 1))
    assert float(out.min()) >= 0 and float(out.max()) <= 1 and not torch.allclose(out, x)
    assert torch.allclose(color_jitter(x, 0.0, device_generator("cpu", 1)), x, atol=1e-6)


def test_fit_image_scales_the_short_side_and_crops_the_long_one() -> None:
    image = np.zeros((400, 1000, 3), np.uint8)
    assert fit_image(image, 320, 352).shape == (320, 352, 3)
    assert fit_image(np.zeros((320, 300, 3), np.uint8), 300, 352).shape == (320, 300, 3)


def test_real_corpus_images_decode(shared: Path, tmp_path: Path) -> None:
    for path in sorted((shared / "datasets" / "style").glob("*.jpg"))[:5]:
        (tmp_path / path.name).symlink_to(path)
    corpus = DeviceCorpus.from_folder(tmp_path, "cpu", threads=2)
    assert len(corpus) == 5 and all(320 <= side <= 352 for side in corpus.images.shape[-2:])
    assert all(min(h, w) == 320 for h, w in corpus.sizes.tolist())
    batch = corpus.batch(3, 64, device_generator("cpu", 0))
    assert batch.shape == (3, 3, 64, 64) and 0.05 < float(batch.mean()) < 0.95


def test_a_pack_decodes_like_the_folder(ramps: DeviceCorpus, tmp_path: Path) -> None:
    from models.training.gpu_data import write_pack

    streams = [
        cv2.imencode(".png", np.ascontiguousarray(im.permute(1, 2, 0).flip(-1)[: int(h), : int(w)].numpy()))[
            1
        ].tobytes()
        for im, (h, w) in zip(ramps.images, ramps.sizes.tolist())
    ]
    packed = DeviceCorpus.from_pack(
        write_pack(tmp_path / "p.npz", streams, ramps.names), "cpu", short_side=200, max_long=240, threads=1
    )
    assert packed.names == ramps.names and torch.equal(packed.images, ramps.images)
    assert torch.equal(packed.sizes, ramps.sizes)
