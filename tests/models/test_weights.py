"""WeightStore: search path, verification, corrupted copies, explicit paths, downloads off and on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from models.errors import WeightsError
from models.weights import FileSpec, WeightStore, git_blob_of, sha256_of


def official_microast():
    """The upstream .pth checkpoint of MicroAST (the bundled safetensors copy comes first in the registry)."""
    from models.registry import checkpoint_named

    return checkpoint_named("microast", "official")


#: git blob id of the official MicroAST modulator (MANIFEST §1a), the id GitHub's tree shows.
MODULATOR_GIT_BLOB = "064bf781ed7df646626a98640ddd627acb17bca3"


@pytest.fixture(scope="module")
def modulator_spec() -> FileSpec:
    return official_microast().files["modulator"]


@pytest.fixture(scope="module")
def original(shared: Path, modulator_spec: FileSpec) -> Path:
    return shared / "weights" / "microast" / modulator_spec.filename


@pytest.fixture()
def copy_on_path(tmp_path: Path, original: Path, monkeypatch) -> Path:
    """A fresh copy of the real modulator file in a nested folder that is the only search path entry."""
    folder = tmp_path / "search" / "nested"
    folder.mkdir(parents=True)
    copy = folder / original.name
    shutil.copyfile(original, copy)
    monkeypatch.setenv("STYLIZER_PATH", str(tmp_path / "search"))
    return copy


def store_from_env(tmp_path: Path, allow_download: bool = False) -> WeightStore:
    store = WeightStore.from_env(allow_download=allow_download)
    store.cache_dir = tmp_path / "cache"
    return store


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte different: only the hash can tell
    path.write_bytes(bytes(data))


def test_finds_and_verifies_a_copy_on_the_search_path(tmp_path, copy_on_path, modulator_spec):
    store = store_from_env(tmp_path)
    assert store.search_path == [tmp_path / "search"]
    assert store.find_local(modulator_spec.filename) == [copy_on_path]
    assert store.resolve(modulator_spec) == copy_on_path


def test_search_path_lists_several_folders_in_order(tmp_path, copy_on_path, modulator_spec, monkeypatch):
    first = tmp_path / "first"
    first.mkdir()
    shutil.copyfile(copy_on_path, first / modulator_spec.filename)
    monkeypatch.setenv("STYLIZER_PATH", f"{first}:{tmp_path / 'search'}")
    store = store_from_env(tmp_path)
    assert store.find_local(modulator_spec.filename) == [first / modulator_spec.filename, copy_on_path]
    assert store.resolve(modulator_spec) == first / modulator_spec.filename


def test_refuses_a_corrupted_copy(tmp_path, copy_on_path, modulator_spec):
    corrupt(copy_on_path)
    store = store_from_env(tmp_path)
    with pytest.raises(
        WeightsError,
        match=rf"{re.escape(modulator_spec.filename)} at .* is corrupted or a different version "
        rf"\(expected sha256 {modulator_spec.sha256}\); delete it",
    ):
        store.resolve(modulator_spec)


def test_a_file_changed_after_verification_is_checked_again(tmp_path, copy_on_path, modulator_spec):
    store = store_from_env(tmp_path)
    assert store.resolve(modulator_spec) == copy_on_path
    copy_on_path.write_bytes(copy_on_path.read_bytes()[:-1])  # truncated: new size and mtime
    with pytest.raises(WeightsError, match="is corrupted"):
        store.resolve(modulator_spec)


def test_explicit_path_wins(tmp_path, copy_on_path, original, modulator_spec):
    elsewhere = tmp_path / "elsewhere" / "my_modulator.pth"
    elsewhere.parent.mkdir()
    shutil.copyfile(original, elsewhere)
    store = store_from_env(tmp_path)
    assert store.resolve(modulator_spec, explicit=elsewhere) == elsewhere
    assert store.resolve(modulator_spec) == copy_on_path


def test_explicit_path_must_exist_and_match(tmp_path, copy_on_path, modulator_spec):
    store = store_from_env(tmp_path)
    with pytest.raises(WeightsError, match=r"checkpoint .*nothing\.pth does not exist; check the path"):
        store.resolve(modulator_spec, explicit=tmp_path / "nothing.pth")
    with pytest.raises(
        WeightsError, match=rf"checkpoint .* is a folder; give the {re.escape(modulator_spec.filename)} file"
    ):
        store.resolve(modulator_spec, explicit=tmp_path)
    corrupt(copy_on_path)
    with pytest.raises(
        WeightsError,
        match=rf"is not {re.escape(modulator_spec.filename)} \(expected sha256 .*download it from "
        rf"{re.escape(modulator_spec.url)}",
    ):
        store.resolve(modulator_spec, explicit=copy_on_path)


def test_missing_file_with_downloads_off_names_file_hash_and_url(tmp_path, modulator_spec, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("STYLIZER_PATH", str(tmp_path / "empty"))
    store = store_from_env(tmp_path)
    with pytest.raises(WeightsError) as info:
        store.resolve(modulator_spec)
    message = str(info.value)
    assert message.startswith(f"{modulator_spec.filename} not found (downloads are off)")
    assert modulator_spec.sha256 in message and modulator_spec.url in message
    assert str(tmp_path / "empty") in message and str(tmp_path / "cache") in message
    assert "\n" not in message


def test_unset_search_path_is_named_in_the_error(tmp_path, modulator_spec, monkeypatch):
    monkeypatch.delenv("STYLIZER_PATH", raising=False)
    store = store_from_env(tmp_path)
    assert store.search_path == []
    with pytest.raises(WeightsError, match=r"\$STYLIZER_PATH \(unset\)"):
        store.resolve(modulator_spec)


def test_download_verifies_and_renames_into_the_cache(tmp_path, original, modulator_spec, monkeypatch):
    monkeypatch.delenv("STYLIZER_PATH", raising=False)
    spec = FileSpec(modulator_spec.filename, original.as_uri(), sha256=modulator_spec.sha256, size=modulator_spec.size)
    store = store_from_env(tmp_path, allow_download=True)
    path = store.resolve(spec)
    assert path == tmp_path / "cache" / spec.filename
    assert sha256_of(path) == spec.sha256
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [spec.filename]  # no .part left behind
    assert store.resolve(spec) == path  # second time: found in the cache


def test_download_of_a_different_file_is_discarded(tmp_path, original, modulator_spec, monkeypatch):
    monkeypatch.delenv("STYLIZER_PATH", raising=False)
    wrong = FileSpec(modulator_spec.filename, original.as_uri(), sha256="0" * 64)
    store = store_from_env(tmp_path, allow_download=True)
    with pytest.raises(WeightsError, match="does not match sha256 0+; the server sent a different file"):
        store.resolve(wrong)
    assert list((tmp_path / "cache").iterdir()) == []


def test_failed_download_gives_the_missing_file_error(tmp_path, modulator_spec, monkeypatch):
    monkeypatch.delenv("STYLIZER_PATH", raising=False)
    gone = FileSpec(modulator_spec.filename, (tmp_path / "no_such_file").as_uri(), sha256=modulator_spec.sha256)
    store = store_from_env(tmp_path, allow_download=True)
    with pytest.raises(WeightsError, match=rf"{re.escape(gone.filename)} not found \(download failed: "):
        store.resolve(gone)


def test_git_blob_id_of_a_real_file(original, tmp_path):
    assert git_blob_of(original) == MODULATOR_GIT_BLOB
    if shutil.which("git"):  # and it is what git itself computes, for any content
        other = tmp_path / "other.bin"
        other.write_bytes(b"\0stylizer\n" * 1000)
        out = subprocess.run(["git", "hash-object", str(other)], capture_output=True, text=True, check=True, timeout=30)
        assert git_blob_of(other) == out.stdout.strip()


def test_git_blob_spec_is_verified(tmp_path, copy_on_path, modulator_spec):
    spec = FileSpec(modulator_spec.filename, modulator_spec.url, git_blob=MODULATOR_GIT_BLOB)
    store = store_from_env(tmp_path)
    assert store.resolve(spec) == copy_on_path
    corrupt(copy_on_path)
    with pytest.raises(WeightsError, match=f"expected git blob {MODULATOR_GIT_BLOB}"):
        store_from_env(tmp_path).resolve(spec)


def test_registered_microast_hashes_match_the_shared_files(shared):
    for spec in official_microast().files.values():
        path = shared / "weights" / "microast" / spec.filename
        assert path.stat().st_size == spec.size
        assert sha256_of(path) == spec.sha256


def test_a_file_verified_for_one_spec_is_not_valid_for_another(tmp_path, copy_on_path, modulator_spec):
    decoder_spec = official_microast().files["decoder"]
    store = store_from_env(tmp_path)
    assert store.resolve(modulator_spec) == copy_on_path  # verified and remembered as the modulator
    with pytest.raises(WeightsError, match=rf"is not {re.escape(decoder_spec.filename)}"):
        store.resolve(decoder_spec, explicit=copy_on_path)


def test_a_broken_copy_shadowed_by_a_good_one_is_used_past_with_a_warning(tmp_path, modulator_spec, shared, caplog):
    from models.weights import WeightStore

    broken = tmp_path / "first" / modulator_spec.filename
    broken.parent.mkdir()
    broken.write_bytes(b"truncated")
    good = next((shared / "weights").rglob(modulator_spec.filename))
    store = WeightStore(
        search_path=[tmp_path / "first", good.parent], cache_dir=tmp_path / "cache", allow_download=False
    )
    with caplog.at_level("WARNING"):
        assert store.locate(modulator_spec) == good
    assert "corrupted" in caplog.text and str(broken) in caplog.text and str(good) in caplog.text
