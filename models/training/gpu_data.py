"""Training images decoded once into device memory; crops, flips and colour jitter drawn on the device.

On a fast GPU a loader that decodes a JPEG per sample per step is the bottleneck (a batch of 32
crops is a few milliseconds of GPU work). So :class:`DeviceCorpus` decodes a folder once (threads,
OpenCV), keeps every image as uint8 in one (N, 3, H, W) canvas on the device (short side scaled to
``short_side``, long side centre-cropped to at most ``max_long``; the canvas beyond an image is
filled by edge replication, so a bilinear tap that lands half a pixel outside reads the edge), and
:meth:`DeviceCorpus.batch` draws a batch with no host round trip: random image indices, a random
square box (the same scale range as :mod:`models.training.data`: short side / U(1.15, 1.45), i.e.
the CPU loader's "resize the short side to ~1.3 × size, crop size × size"), a 50 % horizontal flip,
one ``affine_grid`` + ``grid_sample`` for the whole batch, and (for styles) brightness, contrast and
saturation jitter. Every random number comes from a device ``torch.Generator``, so no step waits
for a host-to-device copy.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.images import read_image, resize_short
from models.training.data import SCALE_RANGE, STYLE_JITTER, list_images

log = logging.getLogger(__name__)

SHORT_SIDE = 320  # the corpus's own short side (shared/datasets/MANIFEST.md)
MAX_LONG = 352  # and its longest long side


def fit_image(bgr: np.ndarray, short_side: int, max_long: int) -> np.ndarray:
    """Short side scaled to ``short_side`` (if it differs), long side centre-cropped to ``max_long``."""
    if min(bgr.shape[:2]) != short_side:
        bgr = resize_short(bgr, short_side)
    h, w = bgr.shape[:2]
    top, left = max(0, (h - max_long) // 2), max(0, (w - max_long) // 2)
    return bgr[top : top + min(h, max_long), left : left + min(w, max_long)]


class DeviceCorpus:
    """A folder of images as one uint8 tensor on the device, with their sizes; see the module docstring."""

    def __init__(self, images: torch.Tensor, sizes: torch.Tensor, names: list[str]) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be a uint8 (N, 3, H, W) tensor, got {images.dtype} {tuple(images.shape)}")
        self.images = images  # (N, 3, H, W) uint8 RGB, images at the top-left, edge-replicated beyond
        self.sizes = sizes.to(images.device, torch.float32)  # (N, 2): each image's (h, w)
        self.names = names

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def nbytes(self) -> int:
        return self.images.numel()

    @classmethod
    def from_folder(
        cls,
        folder: Path,
        device: torch.device | str,
        what: str = "training",
        short_side: int = SHORT_SIDE,
        max_long: int = MAX_LONG,
        threads: int = 16,
    ) -> "DeviceCorpus":
        """Decode every image under ``folder`` once (``threads`` at a time) and move them to ``device``."""
        files = list_images(folder, what)
        start = time.perf_counter()

        def load(path: Path) -> np.ndarray:
            return fit_image(read_image(path), short_side, max_long)

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:  # OpenCV releases the GIL while decoding
            decoded = list(pool.map(load, files))
        return cls._from_decoded(decoded, [p.name for p in files], device, what, start)

    @classmethod
    def from_pack(
        cls,
        path: Path,
        device: torch.device | str,
        what: str = "training",
        short_side: int = SHORT_SIDE,
        max_long: int = MAX_LONG,
        threads: int = 16,
    ) -> "DeviceCorpus":
        """Decode a pack written by :func:`write_pack` (one file of JPEG streams) and move it to ``device``."""
        start = time.perf_counter()
        with np.load(path, allow_pickle=False) as pack:
            data, offsets, names = pack["jpeg"], pack["offsets"], [str(n) for n in pack["names"]]

        def load(i: int) -> np.ndarray:
            image = cv2.imdecode(data[offsets[i] : offsets[i + 1]], cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"{path}: image {names[i]} does not decode; prepare the pack again")
            return fit_image(image, short_side, max_long)

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            decoded = list(pool.map(load, range(len(names))))
        return cls._from_decoded(decoded, names, device, what, start)

    @classmethod
    def _from_decoded(
        cls, decoded: list[np.ndarray], names: list[str], device: torch.device | str, what: str, start: float
    ) -> "DeviceCorpus":
        height = max(im.shape[0] for im in decoded)
        width = max(im.shape[1] for im in decoded)
        canvas = np.empty((len(decoded), height, width, 3), np.uint8)
        for i, im in enumerate(decoded):
            h, w = im.shape[:2]
            canvas[i] = cv2.copyMakeBorder(im, 0, height - h, 0, width - w, cv2.BORDER_REPLICATE)
        sizes = torch.tensor([im.shape[:2] for im in decoded], dtype=torch.float32)
        images = torch.from_numpy(canvas[..., ::-1].copy()).permute(0, 3, 1, 2).contiguous().to(device)
        log.info(
            "%s corpus: %d images decoded in %.1f s, %.0f MB on %s",
            what,
            len(names),
            time.perf_counter() - start,
            images.numel() / 1e6,
            device,
        )
        return cls(images, sizes, names)

    def boxes(
        self,
        index: torch.Tensor,
        generator: torch.Generator,
        scale_range: tuple[float, float] = SCALE_RANGE,
        flip: bool = True,
    ) -> torch.Tensor:
        """``affine_grid`` matrices (n, 2, 3): a random square box inside each indexed image, maybe mirrored."""
        n = index.shape[0]
        h, w = self.sizes[index].unbind(1)
        lo, hi = scale_range
        factor = lo + (hi - lo) * torch.rand(n, device=self.device, generator=generator)
        side = torch.minimum(h, w) / factor  # the box side in source pixels
        top = torch.rand(n, device=self.device, generator=generator) * (h - side)
        left = torch.rand(n, device=self.device, generator=generator) * (w - side)
        mirror = (
            torch.rand(n, device=self.device, generator=generator) < 0.5
            if flip
            else torch.zeros(n, dtype=torch.bool, device=self.device)
        )
        canvas_h, canvas_w = self.images.shape[-2:]
        theta = torch.zeros(n, 2, 3, device=self.device)
        # align_corners=False: output edge ±1 maps to the box edges [left, left + side] in canvas units
        theta[:, 0, 0] = torch.where(mirror, -1.0, 1.0) * side / canvas_w
        theta[:, 0, 2] = (2 * left + side) / canvas_w - 1
        theta[:, 1, 1] = side / canvas_h
        theta[:, 1, 2] = (2 * top + side) / canvas_h - 1
        return theta

    def crops(self, index: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
        """The boxes ``theta`` of images ``index`` resampled (bilinear) to (n, 3, size, size) float RGB in [0, 1]."""
        source = self.images.index_select(0, index).float().div_(255.0)
        grid = F.affine_grid(theta, [index.shape[0], 3, size, size], align_corners=False)
        return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False).clamp_(0.0, 1.0)

    def batch(self, n: int, size: int, generator: torch.Generator, jitter: float = 0.0) -> torch.Tensor:
        """``n`` random augmented ``size`` × ``size`` crops (RGB [0, 1]), all drawn on the device."""
        index = torch.randint(0, len(self), (n,), device=self.device, generator=generator)
        out = self.crops(index, self.boxes(index, generator), size)
        return color_jitter(out, jitter, generator) if jitter else out


def write_pack(path: Path, streams: list[bytes], names: list[str]) -> Path:
    """One ``.npz`` of encoded images (``jpeg``: the streams back to back, ``offsets``, ``names``), for :meth:`DeviceCorpus.from_pack`.

    One file instead of thousands: what travels to a GPU machine is counted in bytes and files.
    """
    offsets = np.zeros(len(streams) + 1, np.int64)
    offsets[1:] = np.cumsum([len(s) for s in streams])
    data = np.frombuffer(b"".join(streams), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, jpeg=data, offsets=offsets, names=np.array(names))
    return Path(path)


def color_jitter(rgb: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Per-image brightness, contrast and saturation × U(1 ± strength) of a (n, 3, H, W) batch in [0, 1]."""
    n = rgb.shape[0]
    b, c, s = (1.0 + strength * (2 * torch.rand(3, n, 1, 1, 1, device=rgb.device, generator=generator) - 1)).unbind(0)
    rgb = rgb * b
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * c + mean
    grey = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
    return ((rgb - grey) * s + grey).clamp(0.0, 1.0)


def device_generator(device: torch.device | str, seed: int) -> torch.Generator:
    """A seeded generator on ``device`` (random numbers drawn there, no host round trip)."""
    return torch.Generator(device=device).manual_seed(int(seed))


__all__ = ["DeviceCorpus", "color_jitter", "device_generator", "fit_image", "write_pack", "STYLE_JITTER"]
