"""Ship a training run's weights into the package, with a model card: ``python -m tools.ship_weights adain --run runs/adain``.

1. Reads the run's checkpoint (``RUN/last.pt``) and exports the inference weights as fp16 safetensors
   (a ``.part`` file beside the target until the end).
2. Evaluates that file with ``models eval`` (:mod:`bench.quality`): MicroAST official, the file
   already shipped (if any) and the new one, on the same pairs.
3. Refuses, unless ``--force``: a file that misses the ship bar (≤ 1.5× MicroAST's mean content and
   style loss), and one that does not beat the shipped file on both ratios.
4. Writes ``models/weights/<task>_ours.safetensors`` (< 16 MB), and the card ``models/cards/<task>.md``
   with the loss-curve PNG, the sample grid and the evaluation table, then prints the sha256 and
   the registry row to add (the registry itself is edited by hand).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.errors import InputError, StylizerError  # noqa: E402
from models.weights import sha256_of  # noqa: E402

MAX_BYTES = 16 * 1024 * 1024
SMOOTH_WINDOW = 40  # logged rows per moving-average window of the loss curve
ROLE = {"adain": "decoder", "aesfa": "main"}


def weights_name(task: str) -> str:
    return f"{task}_ours.safetensors"


# -- the card's parts ----------------------------------------------------------------------------
def licence_summary(sources: Path, top: int = 8) -> str:
    """Markdown: per split, the images per licence (largest first) and per rights flag, from sources.csv."""
    with open(sources, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"split", "license", "rights_flag"} <= set(rows[0]):
        raise InputError(f"{sources} has no split/license/rights_flag columns; give the corpus's sources.csv")
    lines = []
    for split in sorted({r["split"] for r in rows}):
        part = [r for r in rows if r["split"] == split]
        lines += [f"**{split}** ({len(part)} images)", "", "| images | licence the images carried |", "|---:|---|"]
        counts = Counter(r["license"] for r in part).most_common()
        lines += [f"| {n} | {lic} |" for lic, n in counts[:top]]
        if len(counts) > top:
            lines.append(
                f"| {sum(n for _, n in counts[top:])} | {len(counts) - top} other licences (see sources.csv) |"
            )
        flags = Counter(r["rights_flag"] or "none" for r in part).most_common()
        lines += ["", "Rights flags: " + "; ".join(f"{flag}: {n}" for flag, n in flags), ""]
    return "\n".join(lines)


def smoothed(values: np.ndarray, window: int) -> np.ndarray:
    """Moving average (the window shrinks at the start)."""
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(0, idx - window)
    return (cumsum[idx] - cumsum[lo]) / (idx - lo)


def plot_losses(losses_csv: Path, path: Path, window: int = SMOOTH_WINDOW) -> Path:
    """A PNG of the content and style loss against the step (moving average, log scale), drawn with OpenCV."""
    from core.atomic import atomic_write
    from models.training.common import read_loss_log

    rows = read_loss_log(losses_csv)
    if len(rows) < 2:
        raise InputError(f"{losses_csv} has fewer than two rows; train longer before shipping")
    steps = np.array([r["step"] for r in rows])
    series = {
        "content": (smoothed(np.array([r["content"] for r in rows]), window), (200, 90, 30)),
        "style": (smoothed(np.array([r["style"] for r in rows]), window), (40, 40, 220)),
    }
    w, h, left, right, top, bottom = 900, 420, 70, 20, 30, 50
    image = np.full((h, w, 3), 255, np.uint8)
    lo = np.log10(max(min(float(v.min()) for v, _ in series.values()), 1e-6))
    hi = np.log10(max(float(v.max()) for v, _ in series.values()))
    lo, hi = np.floor(lo * 2) / 2, np.ceil(hi * 2) / 2 + 1e-9
    x = lambda s: left + (s - steps[0]) / max(1, steps[-1] - steps[0]) * (w - left - right)  # noqa: E731
    y = lambda v: top + (hi - np.log10(np.maximum(v, 1e-6))) / (hi - lo) * (h - top - bottom)  # noqa: E731
    font = cv2.FONT_HERSHEY_SIMPLEX
    for e in np.arange(lo, hi, 0.5):
        yy = int(y(10**e))
        cv2.line(image, (left, yy), (w - right, yy), (225, 225, 225), 1)
        cv2.putText(image, f"{10**e:.3g}", (4, yy + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for t in np.linspace(steps[0], steps[-1], 6):
        xx = int(x(t))
        cv2.line(image, (xx, h - bottom), (xx, h - bottom + 5), (0, 0, 0), 1)
        cv2.putText(image, f"{int(t)}", (xx - 15, h - bottom + 20), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(image, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for i, (name, (values, colour)) in enumerate(series.items()):
        pts = np.stack([x(steps), y(values)], 1).round().astype(np.int32)
        cv2.polylines(image, [pts], False, colour, 2, cv2.LINE_AA)
        cv2.putText(image, f"{name} loss", (left + 10 + 150 * i, top - 10), font, 0.5, colour, 1, cv2.LINE_AA)
    cv2.putText(
        image,
        f"step (moving average of {window} logged rows; log scale)",
        (left, h - 10),
        font,
        0.45,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(cv2.imencode(".png", image)[1].tobytes()))


def registry_row(task: str, path: Path, digest: str, snapshot) -> str:
    """The checkpoint to add to models/registry.py (an "ours" checkpoint of a file in the package, listed first)."""
    role = ROLE[task]
    return (
        f'Checkpoint("ours", {{"{role}": packaged("{path.name}", sha256="{digest}", '
        f'license="see models/cards/{task}.md")}}, "ours, trained on a CPU, {snapshot.step:,} steps")'
    )


def write_card(
    path: Path,
    task: str,
    snapshot,
    weights: Path,
    digest: str,
    report,
    sources: Path | None,
    curve: Path,
    grid: Path,
    verdict: str,
) -> Path:
    """The model card (Markdown) beside its two PNGs."""
    from bench.quality import format_markdown
    from core.atomic import atomic_write
    from models.training.phases import describe

    cfg = snapshot.config
    cpu_hours = snapshot.seconds / 3600.0
    lines = [
        f"# {task}: ours, trained on a CPU, {snapshot.step:,} steps",
        "",
        f"Shipped {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `python -m tools.ship_weights {task}` "
        f"from `{snapshot.path}`.",
        "",
        "## Weights",
        f"- File: `models/weights/{weights.name}`, fp16 safetensors, {weights.stat().st_size / 1e6:.1f} MB",
        f"- sha256: `{digest}`",
        "",
        "## Training",
        f"- Steps: {snapshot.step:,}, seed {cfg.get('seed', '?')}, in these phases (each resumed from the last):",
        *["  " + line for line in describe(snapshot.phases, snapshot.step)],
        f"- Training time: {cpu_hours:.2f} h of optimiser steps on the device `{cfg.get('device', '?')}` "
        "(the checkpoint's seconds; sampling and checkpoints excluded)",
        f"- Data: content `{cfg.get('content_dir', '?')}`, style `{cfg.get('style_dir', '?')}`",
        "",
        f"![loss curve]({curve.name})",
        "",
        "## Data and the licences the training images carried",
        "",
        licence_summary(sources) if sources else "(sources.csv not found; pass --sources)",
        "",
        "The weights are derived from these images; images under research-only or non-commercial terms",
        "restrict how the weights may be used. Check them before any commercial use.",
        "",
        "## Evaluation (`python main.py models eval`)",
        "",
        format_markdown(report),
        "",
        f"At {report.size} px longest side on {len(report.contents)} contents x {len(report.styles)} styles; "
        f"verdict: {verdict}.",
        "",
        f"![sample grid]({grid.name})",
        "",
    ]
    return atomic_write(path, lambda tmp: Path(tmp).write_text("\n".join(lines)))


def find_sources(snapshot, given: Path | None) -> Path | None:
    if given is not None:
        if not given.is_file():
            raise InputError(f"--sources {given} does not exist; give the corpus's sources.csv")
        return given
    content_dir = snapshot.config.get("content_dir")
    if content_dir:
        candidate = Path(content_dir).parent / "sources.csv"
        if candidate.is_file():
            return candidate
    return None


# -- the command ---------------------------------------------------------------------------------
def ship(args: argparse.Namespace) -> int:
    from bench.quality import Candidate, eval_folders, evaluate, format_table, pick
    from models.registry import default_store
    from models.training.snapshot import export_weights, read_snapshot

    run = Path(args.run).expanduser()
    ckpt = run / "last.pt" if run.is_dir() else run
    snapshot = read_snapshot(ckpt, args.task)
    losses_csv = ckpt.parent / "losses.csv"
    if not losses_csv.is_file():
        raise InputError(f"{losses_csv} does not exist; ship from a run folder of 'main.py train'")
    sources = find_sources(snapshot, args.sources)
    weights_dir, cards_dir = Path(args.weights_dir), Path(args.cards_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    cards_dir.mkdir(parents=True, exist_ok=True)
    target = weights_dir / weights_name(args.task)
    candidate = target.with_name(f"{args.task}_ours.part.safetensors")  # the loaders want the .safetensors suffix
    try:
        export_weights(snapshot, candidate)
        size = candidate.stat().st_size
        if size >= MAX_BYTES:
            raise InputError(f"the export is {size / 1e6:.1f} MB, over the 16 MB a shipped file may have")
        contents, styles = eval_folders(default_store().search_path)
        contents = pick(contents, args.contents, None, "content")
        styles = pick(styles, args.styles, None, "style")
        entries = [Candidate(args.task, candidate, f"{args.task} (ours, step {snapshot.step})")]
        if target.is_file():
            entries.append(Candidate(args.task, target, f"{args.task} (shipped before)"))
        grid = cards_dir / f"{args.task}_grid.jpg"  # JPEG: the card travels in the wheel
        grid_part = grid.with_name(grid.stem + ".part.jpg")
        report = evaluate(entries, contents, styles, size=args.size, grid=grid_part, device=args.device)
        print(format_table(report))
        new = report.rows[1]
        reasons = []
        if not new.meets_bar:
            reasons.append(
                f"it misses the ship bar (content {new.content_ratio:.2f}x, style {new.style_ratio:.2f}x "
                "MicroAST; both must be <= 1.5x)"
            )
        if target.is_file():
            old = report.rows[2]
            if not (new.content_ratio < old.content_ratio and new.style_ratio < old.style_ratio):
                reasons.append(
                    f"it does not beat the shipped {target.name} on both losses (content "
                    f"{new.content_ratio:.2f}x vs {old.content_ratio:.2f}x, style {new.style_ratio:.2f}x "
                    f"vs {old.style_ratio:.2f}x MicroAST)"
                )
        if reasons and not args.force:
            raise InputError(
                f"not shipping {ckpt} (step {snapshot.step}): "
                + "; and ".join(reasons)
                + "; train longer, or pass --force"
            )
        verdict = "meets the ship bar" if new.meets_bar else "below the ship bar (shipped with --force)"
        candidate.replace(target)
        grid_part.replace(grid)
        digest = sha256_of(target)
        curve = plot_losses(losses_csv, cards_dir / f"{args.task}_loss.png")
        card = write_card(
            cards_dir / f"{args.task}.md", args.task, snapshot, target, digest, report, sources, curve, grid, verdict
        )
    finally:
        candidate.unlink(missing_ok=True)
        for part in cards_dir.glob(f"{args.task}_grid.part.jpg"):
            part.unlink(missing_ok=True)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB), {card}, {curve.name}, {grid.name}")
    print(f"sha256 {digest}")
    print("registry row to add (models/registry.py, first checkpoint of the model):")
    print("    " + registry_row(args.task, target, digest, snapshot))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.ship_weights",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("task", choices=sorted(ROLE), help="which model's run to ship")
    p.add_argument("--run", type=Path, required=True, help="run folder (holding last.pt and losses.csv) or its last.pt")
    p.add_argument("--weights-dir", type=Path, default=ROOT / "models" / "weights", help="where shipped weights live")
    p.add_argument("--cards-dir", type=Path, default=ROOT / "models" / "cards", help="where model cards live")
    p.add_argument(
        "--sources", type=Path, default=None, help="the corpus's sources.csv (default: beside the run's content folder)"
    )
    p.add_argument("--size", type=int, default=512, help="evaluation size, longest side in px")
    p.add_argument("--contents", type=int, default=0, help="evaluate on the first N content images (0: all)")
    p.add_argument("--styles", type=int, default=0, help="evaluate on the first N style images (0: all)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--force", action="store_true", help="ship even below the bar or not better than the shipped file")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return ship(args)
    except StylizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
