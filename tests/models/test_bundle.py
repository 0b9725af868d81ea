"""The package's own data (weights, paintings, examples) and the lookup order: package, STYLIZER_PATH, cache, download."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import pytest
import torch

from models.bundle import EXAMPLE_CLIP, EXAMPLE_PHOTO, STYLES_DIR, WEIGHTS_DIR, bundled_paintings
from models.errors import WeightsError
from models.registry import BUNDLED_DIR, MODELS, create_model, default_store, packaged, resolve_checkpoint
from models.styles import find_style, list_styles_on_path, style_origin
from models.weights import FileSpec, WeightStore, sha256_of


def official_files(shared: Path) -> dict[str, Path]:
    ckpt = next(c for c in MODELS["microast"].checkpoints if c.name == "official")
    return {role: shared / "weights" / "microast" / spec.filename for role, spec in ckpt.files.items()}


def test_bundled_microast_is_the_official_network_bit_for_bit(shared):
    bundled = create_model("microast", checkpoint="bundled")
    official = create_model("microast", files=official_files(shared))
    a, b = bundled.state_dict(), official.state_dict()
    assert a.keys() == b.keys() and len(a) > 50
    for key in a:
        assert a[key].dtype == torch.float32 and torch.equal(a[key], b[key]), key


def test_bundled_weights_match_the_registered_hash_and_ship_their_licence():
    spec = MODELS["microast"].checkpoints[0].files["decoder"]
    assert MODELS["microast"].checkpoints[0].name == "bundled" and spec.packaged and not spec.url
    assert sha256_of(WEIGHTS_DIR / spec.filename) == spec.sha256
    licence = (WEIGHTS_DIR / "LICENSE-microast.txt").read_text()
    assert "MIT License" in licence and "EndyWon/MicroAST" in licence


def test_bundled_paintings_are_small_public_domain_and_credited():
    paintings = bundled_paintings()
    assert len(paintings) == 8
    with open(STYLES_DIR / "styles.csv", newline="") as f:
        assert [row["name"] for row in csv.DictReader(f)] == [p.name for p in paintings]
    for p in paintings:
        image = cv2.imread(str(p.path))
        assert image is not None and max(image.shape[:2]) <= 512, p.name
        assert p.path.stat().st_size <= 100_000, p.name
        assert p.rights.startswith("public domain") and p.artist and p.year and p.source, p
    assert {"candy", "mosaic"}.isdisjoint(p.name for p in paintings)  # rights unknown: not shipped


def test_example_photo_and_clip_are_small_and_the_clip_has_sound():
    import av

    assert cv2.imread(str(EXAMPLE_PHOTO)) is not None
    assert EXAMPLE_CLIP.stat().st_size < 400_000
    with av.open(str(EXAMPLE_CLIP)) as clip:
        kinds = sorted(s.type for s in clip.streams)
        video = clip.streams.video[0]
        frames = sum(1 for _ in clip.decode(video))
    assert kinds == ["audio", "video"] and frames >= 48  # at least 2 s at 24 fps


@pytest.fixture()
def three_places(tmp_path: Path, shared: Path):
    """The real modulator file in a package folder, on STYLIZER_PATH and in the cache, and its spec."""
    ckpt = next(c for c in MODELS["microast"].checkpoints if c.name == "official")
    spec = ckpt.files["modulator"]
    original = shared / "weights" / "microast" / spec.filename
    places = {name: tmp_path / name for name in ("package", "search", "cache")}
    for folder in places.values():
        folder.mkdir()
        shutil.copyfile(original, folder / spec.filename)
    store = WeightStore(
        search_path=[places["search"]],
        cache_dir=places["cache"],
        package_dirs=[places["package"]],
        allow_download=False,
    )
    return store, spec, places, original


def test_lookup_order_is_package_then_search_path_then_cache(three_places):
    store, spec, places, _ = three_places
    for expected in ("package", "STYLIZER_PATH", "cache"):
        path = store.resolve(spec)
        folder = places["search" if expected == "STYLIZER_PATH" else expected]
        assert path == folder / spec.filename and store.origin(path) == expected
        path.unlink()  # the next place is used once this one is gone
    with pytest.raises(WeightsError, match="downloads are off"):
        store.resolve(spec)


def test_download_is_last_and_hash_checked(three_places, tmp_path):
    store, spec, places, original = three_places
    for folder in places.values():
        (folder / spec.filename).unlink()
    store.allow_download = True
    good = FileSpec(spec.filename, original.as_uri(), sha256=spec.sha256, size=spec.size)
    path = store.resolve(good)  # file:// is a real urllib download: temp file, verify, rename
    assert path == places["cache"] / spec.filename and store.origin(path) == "cache"
    path.unlink()
    wrong = FileSpec(spec.filename, original.as_uri(), sha256="0" * 64)
    with pytest.raises(WeightsError, match="does not match"):
        store.resolve(wrong)
    assert not (places["cache"] / spec.filename).exists() and not list(places["cache"].glob("*.part"))


def test_a_packaged_file_is_never_downloaded_and_its_absence_says_reinstall(tmp_path):
    store = WeightStore(cache_dir=tmp_path / "cache", package_dirs=[tmp_path / "pkg"], allow_download=True)
    with pytest.raises(WeightsError, match="Reinstall the package"):
        store.resolve(packaged("ours_fp16.safetensors", "0" * 64))
    assert not (tmp_path / "cache").exists()


def test_the_registry_uses_the_package_copy_before_the_official_files_on_the_path(shared, tmp_path):
    store = default_store()
    store.cache_dir, store.allow_download = tmp_path / "cache", False
    assert any((shared / "weights").samefile(p) for p in store.search_path)  # the .pth files are on the path too
    ckpt, paths = resolve_checkpoint(MODELS["microast"], store)
    assert ckpt.name == "bundled" and {store.origin(p) for p in paths.values()} == {"package"}
    assert set(paths.values()) == {BUNDLED_DIR / "microast_official.safetensors"}
    ckpt, paths = resolve_checkpoint(MODELS["microast"], store, checkpoint="official")
    assert {store.origin(p) for p in paths.values()} == {"STYLIZER_PATH"}
    # a file given by path replaces a downloadable file of its role, never the packaged one
    decoder = official_files(shared)["decoder"]
    ckpt, paths = resolve_checkpoint(MODELS["microast"], store, explicit={"decoder": decoder})
    assert ckpt.name == "official" and paths["decoder"] == decoder


def test_bundled_style_names_come_from_the_package_others_from_the_path(store, shared):
    path = find_style("starry_night", store)
    assert path == STYLES_DIR / "starry_night.jpg" and style_origin(path, store) == "package"
    candy = find_style("candy", store)
    assert candy.parent.samefile(shared / "images" / "styles") and style_origin(candy, store) == "STYLIZER_PATH"
    gallery = list_styles_on_path(store)
    assert gallery[:8] == [p.path for p in bundled_paintings()]
    assert sorted(p.stem for p in gallery[8:]) == ["candy", "mosaic"]  # the originals of bundled ones are left out
