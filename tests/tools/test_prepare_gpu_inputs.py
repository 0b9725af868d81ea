"""Packing the GPU job's inputs: eval-image look-alikes are left out, licences kept, the carried size measured."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np

from models.training.gpu_data import DeviceCorpus
from tools.prepare_gpu_inputs import ROOT, hamming, main, measure_carried, pack_corpus, phash, verify_inputs


def fake_datasets(shared: Path, root: Path) -> Path:
    """Two real corpus images plus a resized, recompressed copy of the eval image starry_night."""
    (root / "content").mkdir(parents=True)
    (root / "style").mkdir()
    rows = []
    for split, src in (
        ("content", sorted((shared / "datasets" / "content").glob("*.jpg"))[0]),
        ("style", sorted((shared / "datasets" / "style").glob("*.jpg"))[0]),
    ):
        shutil.copyfile(src, root / split / src.name)
        rows.append(
            {"file": f"{split}/{src.name}", "split": split, "source": "test", "license": "CC0", "rights_flag": ""}
        )
    starry = cv2.imread(str(shared / "images" / "styles" / "starry_night.jpg"))
    cv2.imwrite(str(root / "style" / "copy.jpg"), cv2.resize(starry, (512, 320)), [cv2.IMWRITE_JPEG_QUALITY, 70])
    rows.append(
        {"file": "style/copy.jpg", "split": "style", "source": "test", "license": "?", "rights_flag": "rights unclear"}
    )
    with open(root / "sources.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "split", "source", "license", "rights_flag"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_phash_sees_a_rescaled_copy_and_tells_paintings_apart(shared: Path) -> None:
    starry = cv2.imread(str(shared / "images" / "styles" / "starry_night.jpg"))
    scream = cv2.imread(str(shared / "images" / "styles" / "the_scream.jpg"))
    assert hamming(phash(starry), phash(cv2.resize(starry, (300, 200)))) <= 4
    assert hamming(phash(starry), phash(scream)) > 16


def test_look_alikes_of_eval_images_are_left_out(shared: Path, tmp_path: Path) -> None:
    datasets = fake_datasets(shared, tmp_path / "datasets")
    evals = sorted((shared / "images").rglob("*.jpg"))
    stats = pack_corpus(datasets, evals, tmp_path / "out", quality=80, free_only=False)
    assert (stats["content"], stats["style"]) == (1, 1)
    assert [d["file"] for d in stats["dropped_near_eval"]] == ["style/copy.jpg"]
    assert "starry_night" in stats["dropped_near_eval"][0]["why"]
    with open(tmp_path / "out" / "index.csv", newline="") as f:
        assert [r["license"] for r in csv.DictReader(f)] == ["CC0", "CC0"]
    style = DeviceCorpus.from_pack(tmp_path / "out" / "style.npz", "cpu", threads=1)
    assert style.names == [Path(sorted((shared / "datasets" / "style").glob("*.jpg"))[0]).name]
    free = pack_corpus(datasets, [], tmp_path / "free", quality=0, free_only=True)
    assert (free["content"], free["style"]) == (1, 1)  # the 'rights unclear' row is not free
    with np.load(tmp_path / "free" / "content.npz") as pack:  # quality 0: the original bytes
        original = next((datasets / "content").glob("*.jpg")).read_bytes()
        assert pack["jpeg"].tobytes() == original and pack["offsets"].tolist() == [0, len(original)]


def test_carried_size_is_the_tree_plus_the_carried_folder(tmp_path: Path) -> None:
    carry = tmp_path / "carry"
    carry.mkdir()
    (carry / "blob").write_bytes(b"x" * 100_000)
    size = measure_carried(ROOT, [carry])
    assert size["tree_bytes"] > 100_000  # the code itself
    assert size["total_bytes"] >= size["tree_bytes"] + 100_000


def test_a_folder_git_would_send_is_refused(capsys) -> None:
    assert main(["--out", str(ROOT / "tools" / "not_ignored_inputs")]) == 2
    assert "not ignored by git" in capsys.readouterr().err
    assert not (ROOT / "tools" / "not_ignored_inputs").exists()


def test_verify_names_the_command_when_nothing_was_prepared(tmp_path: Path) -> None:
    import pytest

    from core.errors import InputError

    with pytest.raises(InputError, match="prepare_gpu_inputs"):
        verify_inputs(tmp_path)
