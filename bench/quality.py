"""``models eval``: how close each model's output is to its content and its style, by the project's VGG losses.

Every (content, style) pair of the evaluation set (``images/content`` × ``images/styles`` on the search
path: 10 × 10) is stylised by each model at a user-like size (longest side 512 px by default, content
and style alike), and the output is scored with the AdaIN training losses on our Caffe VGG-19
(:func:`bench.metrics.adain_losses`): content = MSE of relu4_1 against AdaIN(content, style),
style = Σ over relu1_1…relu4_1 of the MSEs of channel means and stds, on layer-normalised features.
Lower is better for both. MicroAST with its official weights is always evaluated and is the
reference: the ship bar of our own models is ≤ 1.5× its mean loss on both (issue 19).

Gatys (optimisation, minutes per pair on a CPU) is optional, on the first few pairs only, and its
ratios are taken against MicroAST on those same pairs.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from core.atomic import atomic_write
from core.errors import InputError
from core.images import IMAGE_SUFFIXES, read_image, resize_longest, to_bgr, to_tensor

log = logging.getLogger(__name__)

REFERENCE = "microast"
SHIP_BAR = 1.5  # issue 19: mean content and style loss each ≤ 1.5× MicroAST's
GRID_ROWS = 4  # pairs shown in the sample grid
GRID_CELL = 224  # px, height of a grid cell
#: sample grid suffix → OpenCV encoder flags. PNG is lossless; a JPEG at quality 90 is ~1/5 of its size
#: (the shipped model cards use it: the grid travels in the wheel).
GRID_FORMATS = {".png": [], ".jpg": [cv2.IMWRITE_JPEG_QUALITY, 90], ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, 90]}


@dataclass
class Candidate:
    """One column of the evaluation: a model name and, optionally, its weights (safetensors or a training last.pt)."""

    model: str
    weights: Path | None = None
    label: str | None = None  # the table's name for it (default: the model and the file)

    @property
    def key(self) -> str:
        return self.model if self.weights is None else f"{self.model}:{self.weights}"


@dataclass
class Row:
    """A model's mean losses over the pairs it ran, and their ratio to the reference on the same pairs."""

    label: str
    model: str
    pairs: int
    content: float
    style: float
    content_ratio: float
    style_ratio: float
    seconds_per_pair: float
    per_pair: list[tuple[str, str, float, float]] = field(default_factory=list)  # (content, style, c_loss, s_loss)

    @property
    def meets_bar(self) -> bool:
        return self.content_ratio <= SHIP_BAR and self.style_ratio <= SHIP_BAR


@dataclass
class QualityReport:
    """Every row, and what the evaluation ran on."""

    rows: list[Row]
    size: int
    contents: list[str]
    styles: list[str]
    grid: str | None = None

    def row(self, label_or_model: str) -> Row:
        for r in self.rows:
            if label_or_model in (r.label, r.model):
                return r
        raise KeyError(label_or_model)

    def to_json(self) -> dict:
        return asdict(self)


def eval_folders(search_path: list[Path]) -> tuple[list[Path], list[Path]]:
    """The evaluation images: the first ``content`` and ``styles`` folders on the search path holding images."""

    def images(name: str) -> list[Path]:
        for root in search_path:
            folder = Path(root) / name
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
            if files:
                return files
        where = ", ".join(str(p) for p in search_path) or "(empty)"
        raise InputError(
            f"no evaluation images: no folder {name}/ with images on the search path ({where}); "
            "set STYLIZER_PATH to include the shared images folder"
        )

    return images("content"), images("styles")


def pick(files: list[Path], count: int | None, names: list[str] | None, what: str) -> list[Path]:
    """The first ``count`` files, or those whose stem is in ``names`` (in that order)."""
    if names:
        by_stem = {p.stem: p for p in files}
        missing = [n for n in names if n not in by_stem]
        if missing:
            raise InputError(f"no {what} image named {', '.join(missing)}; choose from: {', '.join(by_stem)}")
        return [by_stem[n] for n in names]
    return files[:count] if count else files


def load_candidate(candidate: Candidate, device: torch.device) -> tuple[torch.nn.Module, str]:
    """The model and its table label; a training checkpoint (.pt) is read with its step."""
    model, label = _load(candidate, device)
    return model, candidate.label or label


def _load(candidate: Candidate, device: torch.device) -> tuple[torch.nn.Module, str]:
    from models.registry import create_model, model_config

    config = model_config(candidate.model)
    if candidate.weights is None:
        from models.registry import default_store, resolve_checkpoint

        store = default_store()
        checkpoint = resolve_checkpoint(config, store)[0].name if config.checkpoints else None
        return (
            create_model(candidate.model, checkpoint=checkpoint, store=store, device=str(device)),
            f"{candidate.model} ({checkpoint})",
        )
    path = candidate.weights.expanduser()
    if not path.is_file():
        raise InputError(f"weights {path} for {candidate.model} do not exist; give a .safetensors export or a last.pt")
    if path.suffix == ".pt":  # a training checkpoint (last.pt, <task>_last.pt)
        from models.training.snapshot import inference_model, read_snapshot

        snapshot = read_snapshot(path, candidate.model)
        return inference_model(snapshot).to(device), f"{candidate.model} ({path.name}, step {snapshot.step})"
    if not config.trained_role:
        raise InputError(f"{candidate.model} takes no trained weights file; drop its --weights entry")
    model = create_model(candidate.model, device=str(device), files={config.trained_role: path})
    return model, f"{candidate.model} ({path.name})"


class VGGJudge:
    """The VGG features of the evaluation images, computed once, and the losses of any output."""

    def __init__(self, contents: dict[str, torch.Tensor], styles: dict[str, torch.Tensor]) -> None:
        from models.adain import CaffeVGGEncoder, feature_stats

        self.encoder = CaffeVGGEncoder()
        with torch.inference_mode():
            self.content_feat = {k: self.encoder(v) for k, v in contents.items()}
            self.style_stats = {k: [feature_stats(f) for f in self.encoder.features(v)] for k, v in styles.items()}

    def losses(self, output: torch.Tensor, content: str, style: str) -> tuple[float, float]:
        """(content, style) loss of one output (1, 3, H, W) of the named pair."""
        from bench.metrics import adain_losses
        from models.adain import adain

        with torch.inference_mode():
            stats = self.style_stats[style]
            target = adain(self.content_feat[content], *stats[-1])
            return adain_losses(self.encoder.features(output.float()), target, stats)


def stylize_all(
    model, contents: dict[str, torch.Tensor], styles: dict[str, torch.Tensor], pairs: list[tuple[str, str]]
):
    """Yield ((content, style), output) for each pair, stylised by a feed-forward model (one code per style)."""
    device = model.device
    with torch.inference_mode():
        codes = {s: model.encode_style(styles[s].to(device)) for s in dict.fromkeys(s for _, s in pairs)}
        for c, s in pairs:
            out = model.stylize(contents[c].to(device), codes[s], 1.0).clamp(0, 1).float().cpu()
            if out.shape != contents[c].shape:  # the losses compare with the content's own features
                raise RuntimeError(f"output {tuple(out.shape)} is not the content's shape {tuple(contents[c].shape)}")
            yield (c, s), out


def gatys_all(
    contents: dict[str, torch.Tensor],
    styles: dict[str, torch.Tensor],
    pairs: list[tuple[str, str]],
    iterations: int,
    device: torch.device,
) -> dict[tuple[str, str], torch.Tensor]:
    from models.gatys import GatysConfig
    from models.registry import create_model

    model = create_model("gatys", device=str(device))
    config = GatysConfig(iterations=iterations)
    return {
        (c, s): model.optimize(contents[c].to(device), styles[s].to(device), config).image.clamp(0, 1).float().cpu()
        for c, s in pairs
    }


def diagonal_pairs(contents: list[str], styles: list[str], n: int) -> list[tuple[str, str]]:
    """n distinct pairs, each content and style used as evenly as possible (content i with style i, then shifted)."""
    nc, ns = len(contents), len(styles)
    return [(contents[i], styles[(i + shift) % ns]) for shift in range(ns) for i in range(nc)][:n]


def evaluate(
    candidates: list[Candidate],
    content_files: list[Path],
    style_files: list[Path],
    size: int = 512,
    gatys_pairs: int = 0,
    gatys_iters: int = 100,
    device: str = "cpu",
    grid: Path | None = None,
    progress=None,
) -> QualityReport:
    """Score every candidate (MicroAST official first, always) on every content × style pair."""
    torch_device = torch.device(device)
    if not any(c.model == REFERENCE and c.weights is None for c in candidates):
        candidates = [Candidate(REFERENCE)] + candidates
    candidates = sorted(candidates, key=lambda c: not (c.model == REFERENCE and c.weights is None))
    contents = {p.stem: to_tensor(resize_longest(read_image(p), size)) for p in content_files}
    styles = {p.stem: to_tensor(resize_longest(read_image(p), size)) for p in style_files}
    pairs = [(c, s) for c in contents for s in styles]
    judge = VGGJudge(contents, styles)
    rows: list[Row] = []
    samples: dict[str, dict[tuple[str, str], torch.Tensor]] = {}
    shown = diagonal_pairs(list(contents), list(styles), min(GRID_ROWS, len(pairs)))
    for candidate in candidates:
        model, label = load_candidate(candidate, torch_device)
        if not getattr(type(model), "encode_style", None):
            raise InputError(f"{candidate.model} is not a feed-forward model; use --gatys-pairs for Gatys")
        start = time.perf_counter()
        scored = []
        for i, (pair, out) in enumerate(stylize_all(model, contents, styles, pairs)):
            scored.append((*pair, *judge.losses(out, *pair)))
            if pair in shown:
                samples.setdefault(label, {})[pair] = out
            if progress:
                progress(label, i + 1, len(pairs))
        rows.append(_row(label, candidate.model, scored, rows[0] if rows else None, time.perf_counter() - start))
        del model
    if gatys_pairs:
        chosen = diagonal_pairs(list(contents), list(styles), gatys_pairs)
        start = time.perf_counter()
        outs = gatys_all(contents, styles, chosen, gatys_iters, torch_device)
        scored = [(*p, *judge.losses(o, *p)) for p, o in outs.items()]
        samples["gatys"] = {p: o for p, o in outs.items() if p in shown}
        rows.append(_row(f"gatys ({gatys_iters} L-BFGS steps)", "gatys", scored, rows[0], time.perf_counter() - start))
    report = QualityReport(rows, size, list(contents), list(styles))
    if grid is not None:
        write_grid(grid, shown, contents, styles, samples)
        report.grid = str(grid)
    return report


def _row(
    label: str, model: str, scored: list[tuple[str, str, float, float]], reference: Row | None, seconds: float
) -> Row:
    content = float(np.mean([s[2] for s in scored]))
    style = float(np.mean([s[3] for s in scored]))
    if reference is None:
        ref_c, ref_s = content, style
    else:  # the reference's mean over the same pairs
        keys = {(c, s) for c, s, _, _ in scored}
        same = [p for p in reference.per_pair if (p[0], p[1]) in keys]
        ref_c, ref_s = float(np.mean([p[2] for p in same])), float(np.mean([p[3] for p in same]))
    return Row(
        label,
        model,
        len(scored),
        content,
        style,
        content / ref_c,
        style / ref_s,
        seconds / len(scored),
        [tuple(s) for s in scored],
    )


def format_table(report: QualityReport) -> str:
    """The table printed by ``models eval``."""
    lines = [
        f"VGG content/style loss at {report.size} px longest side, {len(report.contents)} contents x "
        f"{len(report.styles)} styles (lower is better; ratios to MicroAST (official weights) on the same pairs; "
        f"ship bar <= {SHIP_BAR}x both)",
        f"{'model':44s} {'pairs':>5s} {'content':>8s} {'style':>8s} {'c/MicroAST':>10s} {'s/MicroAST':>10s} "
        f"{'s/pair':>7s}  bar",
    ]
    for r in report.rows:
        bar = (
            "ref"
            if r.model == REFERENCE and r.content_ratio == 1.0 == r.style_ratio
            else ("yes" if r.meets_bar else "no")
        )
        lines.append(
            f"{r.label[:44]:44s} {r.pairs:5d} {r.content:8.4f} {r.style:8.4f} {r.content_ratio:10.2f} "
            f"{r.style_ratio:10.2f} {r.seconds_per_pair:7.2f}  {bar}"
        )
    return "\n".join(lines)


def format_markdown(report: QualityReport) -> str:
    """The same table in Markdown (model cards)."""
    lines = [
        "| model | pairs | content loss | style loss | content / MicroAST | style / MicroAST |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in report.rows:
        lines.append(
            f"| {r.label} | {r.pairs} | {r.content:.4f} | {r.style:.4f} | {r.content_ratio:.2f} | {r.style_ratio:.2f} |"
        )
    return "\n".join(lines)


def write_json(report: QualityReport, path: Path) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(report.to_json(), indent=1)))


# -- the sample grid ------------------------------------------------------------------------------
def _cell(image: torch.Tensor | None, width: int) -> np.ndarray:
    """An image scaled to GRID_CELL px high (at most ``width`` wide), centred on white."""
    cell = np.full((GRID_CELL, width, 3), 255, np.uint8)
    if image is None:
        return cell
    bgr = to_bgr(image)
    h, w = bgr.shape[:2]
    scale = min(GRID_CELL / h, width / w)
    bgr = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    top, left = (GRID_CELL - bgr.shape[0]) // 2, (width - bgr.shape[1]) // 2
    cell[top : top + bgr.shape[0], left : left + bgr.shape[1]] = bgr
    return cell


def _label(text: str, width: int) -> np.ndarray:
    strip = np.full((22, width, 3), 255, np.uint8)
    cv2.putText(strip, text[: max(4, width // 7)], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def write_grid(
    path: Path,
    shown: list[tuple[str, str]],
    contents: dict[str, torch.Tensor],
    styles: dict[str, torch.Tensor],
    samples: dict[str, dict[tuple[str, str], torch.Tensor]],
) -> Path:
    """Rows: the shown pairs; columns: content, style, then each model's output (blank where it did not run)."""
    width = round(GRID_CELL * 4 / 3)
    pad = np.full((GRID_CELL + 22, 4, 3), 255, np.uint8)
    header = ["content", "style", *samples]
    lines = []
    for c, s in shown:
        cells = [contents[c], styles[s], *(samples[m].get((c, s)) for m in samples)]
        titles = [c, s, *header[2:]]
        lines.append(
            np.concatenate(
                [
                    np.concatenate([np.concatenate([_label(t, width), _cell(x, width)]), pad], axis=1)
                    for t, x in zip(titles, cells)
                ],
                axis=1,
            )
        )
    image = np.concatenate(lines)
    suffix = path.suffix.lower()
    if suffix not in GRID_FORMATS:
        raise InputError(f"the sample grid {path} must be a .png or .jpg file")
    encoded = cv2.imencode(suffix, image, GRID_FORMATS[suffix])[1].tobytes()
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(encoded))
