"""Training data: image folders, random crops/flips/colour jitter, a resumable step plan, sample grids.

The batch for step ``t`` is a pure function of ``(seed, t)``: which content and style images (each
folder walked in a fresh permutation per epoch) and the seed of every image's augmentation. So a
resumed run sees exactly the data the uninterrupted run would have seen, whatever the number of
loader workers, and no loader state needs to be checkpointed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from core.errors import InputError
from core.images import IMAGE_SUFFIXES, read_image, resize_short, save_image

log = logging.getLogger(__name__)

#: short side = size × a factor drawn from this range, then a random size × size crop.
SCALE_RANGE = (1.15, 1.45)
STYLE_JITTER = 0.1  # ± brightness, contrast and saturation on style images only
_MAX_BAD_SKIPS = 50

SampleKey = tuple[int, int, int]  # (content index, style index, augmentation seed)


def list_images(folder: Path, what: str) -> list[Path]:
    """Every image file under ``folder`` (recursive, sorted); an error when there are none."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"{what} folder {folder} does not exist; give a folder of JPEG/PNG images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{what} folder {folder} holds no images (.jpg, .png, ...)")
    return files


def random_crop(bgr: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Resize the short side to ~1.3 × size, take a random size × size crop, flip half the time."""
    image = resize_short(bgr, int(round(size * rng.uniform(*SCALE_RANGE))))
    h, w = image.shape[:2]
    top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    image = image[top : top + size, left : left + size]
    return image[:, ::-1] if rng.random() < 0.5 else image


def color_jitter(rgb: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """Mild brightness, contrast and saturation changes of an RGB (3, H, W) image in [0, 1]."""
    b, c, s = (1.0 + rng.uniform(-strength, strength, 3)).tolist()
    rgb = rgb * b
    rgb = (rgb - rgb.mean()) * c + rgb.mean()
    grey = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]).unsqueeze(0)
    return ((rgb - grey) * s + grey).clamp(0.0, 1.0)


def to_chw(bgr: np.ndarray) -> torch.Tensor:
    """uint8 BGR (H, W, 3) → float RGB (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1).float().div_(255.0)


class PairDataset(Dataset):
    """(content crop, style crop) for a SampleKey; an unreadable file is skipped with a warning."""

    def __init__(self, content: list[Path], style: list[Path], size: int, style_jitter: float = STYLE_JITTER) -> None:
        self.content, self.style, self.size, self.style_jitter = content, style, size, style_jitter

    def __len__(self) -> int:
        return len(self.content)

    def _crop(self, files: list[Path], index: int, rng: np.random.Generator) -> torch.Tensor:
        for attempt in range(min(len(files), _MAX_BAD_SKIPS)):
            path = files[(index + attempt) % len(files)]
            try:
                return to_chw(random_crop(read_image(path), self.size, rng))
            except (InputError, cv2.error) as exc:
                log.warning("skipping %s: %s", path, exc)
        raise InputError(f"{_MAX_BAD_SKIPS} unreadable images in a row near {files[index]}; check the training folder")

    def __getitem__(self, key: SampleKey) -> tuple[torch.Tensor, torch.Tensor]:
        content_index, style_index, seed = key
        rng = np.random.default_rng(seed)
        content = self._crop(self.content, content_index, rng)
        style = self._crop(self.style, style_index, rng)
        if self.style_jitter:
            style = color_jitter(style, self.style_jitter, rng)
        return content, style


class StepSampler(Sampler[list[SampleKey]]):
    """The batches of steps ``start .. stop - 1``, each a pure function of (seed, step)."""

    def __init__(self, n_content: int, n_style: int, batch: int, seed: int, start: int, stop: int) -> None:
        self.sizes, self.batch, self.seed, self.start, self.stop = (n_content, n_style), batch, seed, start, stop
        self._perms: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def _index(self, which: int, n: int) -> int:
        epoch, pos = divmod(n, self.sizes[which])
        if (which, epoch) not in self._perms:
            self._perms = {k: v for k, v in self._perms.items() if k[0] != which}  # one epoch per folder in memory
            self._perms[(which, epoch)] = np.random.default_rng([self.seed, which, epoch]).permutation(
                self.sizes[which]
            )
        return int(self._perms[(which, epoch)][pos])

    def key(self, n: int) -> SampleKey:
        """The n-th sample of the run."""
        seed = int(np.random.SeedSequence([self.seed, 2, n]).generate_state(1)[0])
        return self._index(0, n), self._index(1, n), seed

    def __iter__(self) -> Iterator[list[SampleKey]]:
        for step in range(self.start, self.stop):
            yield [self.key(step * self.batch + b) for b in range(self.batch)]


def make_loader(config, start: int = 0) -> DataLoader:
    """The DataLoader of a TrainConfig's remaining steps (from ``start``)."""
    content = list_images(config.content_dir, "content")
    style = list_images(config.style_dir, "style")
    log.info("training data: %d content and %d style images", len(content), len(style))
    sampler = StepSampler(len(content), len(style), config.batch, config.seed, start, config.iters)
    # no cv2.setNumThreads(1) in the workers: a worker forked from a process whose OpenCV pool already ran
    # (a test suite, the app) waits forever in it for pool threads that did not survive the fork
    return DataLoader(
        PairDataset(content, style, config.size),
        batch_sampler=sampler,
        num_workers=config.num_workers,
        pin_memory=str(config.device).startswith("cuda"),
        persistent_workers=False,
        # the loader's own seed comes from here, so creating it leaves the global RNG untouched
        generator=torch.Generator().manual_seed(config.seed),
    )


def center_square(path: Path, size: int) -> torch.Tensor:
    """An image as a (3, size, size) tensor: short side scaled to size, centre crop."""
    image = resize_short(read_image(path), size)
    h, w = image.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return to_chw(image[top : top + size, left : left + size])


@dataclass
class SampleGrid:
    """Fixed eval content × style pairs drawn into one PNG: styles along the top, contents down the side."""

    content: torch.Tensor  # (C, 3, S, S)
    style: torch.Tensor  # (K, 3, S, S)

    @classmethod
    def from_config(cls, config, device: torch.device) -> "SampleGrid":
        contents = list(config.eval_content) or list_images(config.content_dir, "content")[:3]
        styles = list(config.eval_style) or list_images(config.style_dir, "style")[:3]
        where = "the eval set" if config.eval_content else "the training folders (no eval set on the search path)"
        log.info(
            "sample grid from %s: %s x %s",
            where,
            ", ".join(p.stem for p in contents),
            ", ".join(p.stem for p in styles),
        )
        return cls(
            torch.stack([center_square(p, config.size) for p in contents]).to(device),
            torch.stack([center_square(p, config.size) for p in styles]).to(device),
        )

    def render(self, task) -> torch.Tensor:
        """The grid as a (1, 3, H, W) image; call under no_grad."""
        pad = 4
        size = self.content.shape[-1]
        blank = torch.ones(3, size, size, device=self.content.device)
        rows = [[blank, *self.style]]
        for c in self.content:
            out = task.sample(c.unsqueeze(0).expand(len(self.style), -1, -1, -1), self.style)
            rows.append([c, *out.float().clamp(0, 1)])
        lines = [
            torch.cat([torch.nn.functional.pad(t.float(), (pad, pad, pad, pad), value=1.0) for t in row], dim=2)
            for row in rows
        ]
        return torch.cat(lines, dim=1).unsqueeze(0)

    def write(self, task, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_image(self.render(task).cpu(), path)
