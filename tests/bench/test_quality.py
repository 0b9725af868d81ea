"""``models eval`` (bench.quality): VGG content/style losses of real models on the real evaluation images."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from bench.quality import GRID_CELL, Candidate, VGGJudge, diagonal_pairs, eval_folders, evaluate, pick
from core.images import read_image, resize_longest, to_tensor
from models.registry import default_store

ROOT = Path(__file__).resolve().parents[2]
SIZE = 128


@pytest.fixture(scope="module")
def images() -> tuple[list[Path], list[Path]]:
    contents, styles = eval_folders(default_store().search_path)
    return pick(contents, None, ["chicago", "golden_gate"], "content"), pick(
        styles, None, ["starry_night", "mosaic"], "style"
    )


def test_the_judge_scores_the_style_of_stylised_output_better_than_the_plain_content(images):
    from models.registry import create_model

    contents, styles = images
    content = {p.stem: to_tensor(resize_longest(read_image(p), SIZE)) for p in contents[:1]}
    style = {p.stem: to_tensor(resize_longest(read_image(p), SIZE)) for p in styles[:1]}
    judge = VGGJudge(content, style)
    (c, x), (s, y) = next(iter(content.items())), next(iter(style.items()))
    model = create_model("microast")
    import torch

    with torch.inference_mode():
        out = model.stylize(x, model.encode_style(y)).clamp(0, 1)
    plain_c, plain_s = judge.losses(x, c, s)
    out_c, out_s = judge.losses(out, c, s)
    assert out_s < 0.5 * plain_s, (out_s, plain_s)  # MicroAST moves the statistics towards the style's
    assert 0 < out_c and 0 < plain_c


def test_eval_of_a_training_checkpoint_against_microast(images, shared, tmp_path):
    warm = shared / "warmstart" / "adain" / "last.pt"
    contents, styles = images
    report = evaluate([Candidate("adain", warm)], contents, styles, size=SIZE, grid=tmp_path / "grid.png")
    ref, ours = report.rows
    assert (
        ref.label == "microast (bundled)" and ref.content_ratio == ref.style_ratio == 1.0
    )  # official weights, packaged
    assert ours.label == "adain (last.pt, step 2554)" and ours.pairs == ref.pairs == 4
    assert {(c, s) for c, s, _, _ in ours.per_pair} == {(c.stem, s.stem) for c in contents for s in styles}
    for row in report.rows:
        assert all(math.isfinite(v) and v > 0 for v in (row.content, row.style))
    assert math.isclose(ours.content_ratio, ours.content / ref.content)
    grid = read_image(tmp_path / "grid.png")
    assert grid.shape[0] == 4 * (GRID_CELL + 22)  # one row per shown pair
    assert grid.shape[1] == 4 * (round(GRID_CELL * 4 / 3) + 4)  # content, style, microast, adain


def test_diagonal_pairs_are_distinct_and_spread():
    pairs = diagonal_pairs(list("abc"), list("wxyz"), 12)
    assert len(set(pairs)) == 12
    assert pairs[:3] == [("a", "w"), ("b", "x"), ("c", "y")]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py", "models", "eval", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_cli_errors_are_one_line(tmp_path):
    r = run_cli(
        "--model", "adain", "--weights", f"aesfa={tmp_path / 'x.safetensors'}", "--grid", str(tmp_path / "g.png")
    )
    assert r.returncode == 2 and r.stderr.startswith("error: --weights names aesfa") and "Traceback" not in r.stderr
    r = run_cli(
        "--model",
        "adain",
        "--weights",
        f"adain={tmp_path / 'missing.safetensors'}",
        "--contents",
        "1",
        "--styles",
        "1",
        "--size",
        "64",
        "--grid",
        str(tmp_path / "g.png"),
    )
    assert r.returncode == 2 and "do not exist" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("--model", "gatys", "--grid", str(tmp_path / "g.png"))
    assert r.returncode == 2 and "--gatys-pairs" in r.stderr


def test_cli_prints_the_table_and_writes_the_grid(tmp_path):
    r = run_cli(
        "--contents",
        "1",
        "--styles",
        "1",
        "--size",
        "64",
        "--grid",
        str(tmp_path / "g.png"),
        "--json",
        str(tmp_path / "r.json"),
    )
    assert r.returncode == 0, r.stderr
    assert "microast (bundled)" in r.stdout and "ref" in r.stdout
    assert cv2.imread(str(tmp_path / "g.png")) is not None and (tmp_path / "r.json").stat().st_size > 0
