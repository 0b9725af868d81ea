"""tools.ship_weights: export, evaluate, refuse what does not beat the bar or the shipped file, write the card."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from core.images import read_image
from models.training.common import TrainConfig, create_task, train
from tools import ship_weights


@pytest.fixture(scope="module")
def run(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real two-step AdaIN run (64 px) on a few corpus images."""
    root = tmp_path_factory.mktemp("ship")
    for split, count in (("content", 4), ("style", 3)):
        (root / split).mkdir()
        for path in sorted((shared / "datasets" / split).glob("*.jpg"))[:count]:
            (root / split / path.name).symlink_to(path)
    images = shared / "images"
    config = TrainConfig(
        content_dir=root / "content",
        style_dir=root / "style",
        out=root / "run",
        iters=3,
        batch=2,
        size=64,
        log_every=1,
        sample_every=0,
        num_workers=0,
        eval_content=(images / "content" / "chicago.jpg",),
        eval_style=(images / "styles" / "mosaic.jpg",),
    )
    task, config = create_task("adain", config)
    train(task, config)
    return root / "run"


def ship(run: Path, tmp: Path, shared: Path, *extra: str) -> int:
    return ship_weights.main(
        [
            "adain",
            "--run",
            str(run),
            "--weights-dir",
            str(tmp / "weights"),
            "--cards-dir",
            str(tmp / "cards"),
            "--sources",
            str(shared / "datasets" / "sources.csv"),
            "--size",
            "64",
            "--contents",
            "1",
            "--styles",
            "2",
            *extra,
        ]
    )


def test_ship_refuses_below_the_bar_then_ships_with_force_and_guards_the_shipped_file(run, shared, tmp_path, capsys):
    # three steps of training are far from MicroAST: refused, and nothing is left behind
    assert ship(run, tmp_path, shared) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: not shipping")
        and "misses the ship bar" in err
        and "\n" == err[-1]
        and err.count("\n") == 1
    )
    assert list((tmp_path / "weights").iterdir()) == []

    assert ship(run, tmp_path, shared, "--force") == 0
    out = capsys.readouterr().out
    shipped = tmp_path / "weights" / "adain_ours.safetensors"
    digest = hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert 0 < shipped.stat().st_size < 16 * 1024 * 1024
    assert f"sha256 {digest}" in out and f'packaged("adain_ours.safetensors", sha256="{digest}"' in out  # + the row
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == ["adain_ours.safetensors"]
    card = (tmp_path / "cards" / "adain.md").read_text()
    assert digest in card and "3 steps" in card and "| microast (bundled) |" in card
    assert "- steps 1–3: 64-px crops, batch 2, lr 0.0001 (decay 5e-05), content weight 1.0" in card  # its one phase
    assert "Berkeley BSDS500: non-commercial research/education" in card  # the licences the images carried
    for picture in ("adain_loss.png", "adain_grid.jpg"):
        assert (tmp_path / "cards" / picture).stat().st_size > 1000 and f"]({picture})" in card
    assert read_image(tmp_path / "cards" / "adain_grid.jpg").shape[1] > 1000  # a real picture, the grid's width

    from models.adain import AdaIN

    AdaIN.from_files({"decoder": shipped})  # the app loads what was shipped

    # the same checkpoint again does not beat the shipped file: refused, the shipped file untouched
    assert ship(run, tmp_path, shared) == 2
    assert "does not beat the shipped adain_ours.safetensors" in capsys.readouterr().err
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == digest


def test_licence_summary_counts_every_image(shared):
    text = ship_weights.licence_summary(shared / "datasets" / "sources.csv")
    assert "**content** (1583 images)" in text and "**style** (475 images)" in text
    assert "| 497 | Berkeley BSDS500: non-commercial research/education |" in text


def test_a_run_without_a_checkpoint_is_one_line(tmp_path, shared, capsys):
    assert ship(tmp_path, tmp_path, shared) == 2
    assert capsys.readouterr().err.startswith("error: training checkpoint")
