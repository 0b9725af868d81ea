"""Find, verify and cache checkpoint files.

Lookup order (timm's ``download_cached_file`` habit): explicit path → the package's own data folders
(``models/weights``: files that ship with the app) → every directory of the search path
(``STYLIZER_PATH``, searched recursively by file name) → the user cache → download from the
canonical URL into a temporary file, verify, atomic rename. A file is used only after its SHA-256
(or git blob id, where only that is published) matches; ``WeightStore.origin`` says which of these
places a path came from.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from core.atomic import atomic_write
from models.errors import WeightsError

log = logging.getLogger(__name__)

SEARCH_PATH_ENV = "STYLIZER_PATH"
REINSTALL = "pip install --force-reinstall --no-deps . in the project's folder, or git checkout models/ in a clone"


@dataclass(frozen=True)
class FileSpec:
    """One file the app can use: where it comes from and how to recognise it."""

    filename: str
    url: str
    sha256: str | None = None
    git_blob: str | None = None
    size: int | None = None
    license: str = "unknown"
    #: True for a file that ships inside the package (``models/weights``): it has no URL, so a missing
    #: or damaged copy means a broken install, and the message says to reinstall.
    packaged: bool = False

    @property
    def expected_hash(self) -> str:
        if self.sha256:
            return f"sha256 {self.sha256}"
        if self.git_blob:
            return f"git blob {self.git_blob}"
        return "no published hash: the loader checks every key and shape instead"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_of(path: Path) -> str:
    """The id git gives the file's content (``git hash-object``)."""
    digest = hashlib.sha1()
    digest.update(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def matches(spec: FileSpec, path: Path) -> bool:
    """True when the file at ``path`` is the one ``spec`` describes."""
    if spec.size is not None and path.stat().st_size != spec.size:
        return False
    if spec.sha256:
        return sha256_of(path) == spec.sha256
    if spec.git_blob:
        return git_blob_of(path) == spec.git_blob
    return True  # unpublished hash: the model's loader must check the structure strictly


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "stylizer"


def search_path_from_env(environ: dict[str, str] | None = None) -> list[Path]:
    value = (environ if environ is not None else os.environ).get(SEARCH_PATH_ENV, "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p]


@dataclass
class WeightStore:
    """Where checkpoint files are looked for, cached and downloaded to."""

    search_path: list[Path] = field(default_factory=list)
    cache_dir: Path = field(default_factory=default_cache_dir)
    #: folders inside the installed package, searched (by file name, not recursively) before anything else
    package_dirs: list[Path] = field(default_factory=list)
    allow_download: bool = True
    _verified: dict[tuple[FileSpec, str, int, int], bool] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, allow_download: bool = True) -> "WeightStore":
        return cls(search_path=search_path_from_env(), allow_download=allow_download)

    # -- lookup -----------------------------------------------------------------------------
    def find_local(self, filename: str) -> list[Path]:
        """Every copy of ``filename`` in the package, on the search path and in the cache, in lookup order."""
        found: list[Path] = [d / filename for d in self.package_dirs if (d / filename).is_file()]
        for root in self.search_path:
            if root.is_file() and root.name == filename:
                found.append(root)
            elif root.is_dir():
                found.extend(sorted(root.rglob(filename)))
        cached = self.cache_dir / filename
        if cached.is_file():
            found.append(cached)
        return found

    def origin(self, path: Path) -> str:
        """Where a found file came from: ``package``, ``STYLIZER_PATH``, ``cache`` or ``explicit path``."""
        path = Path(path).resolve()
        for label, roots in (
            ("package", self.package_dirs),
            (SEARCH_PATH_ENV, self.search_path),
            ("cache", [self.cache_dir]),
        ):
            for root in roots:
                root = Path(root).expanduser().resolve()
                if path == root or root in path.parents:
                    return label
        return "explicit path"

    def _is_valid(self, spec: FileSpec, path: Path) -> bool:
        st = path.stat()
        # keyed by the expected file too: one file checked against two specs must not share a verdict
        key = (spec, str(path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._verified:
            self._verified[key] = matches(spec, path)
        return self._verified[key]

    def locate(self, spec: FileSpec) -> Path | None:
        """A verified local copy, or None. A corrupted copy is an error, not a miss."""
        bad: list[Path] = []
        for path in self.find_local(spec.filename):
            if self._is_valid(spec, path):
                if bad:  # a good copy later on the path shadows a broken one: use it, but say so
                    log.warning(
                        "%s at %s is corrupted or a different version; using %s (delete the bad copy)",
                        spec.filename,
                        bad[0],
                        path,
                    )
                return path
            bad.append(path)
        if bad and spec.packaged:
            raise WeightsError(
                f"{spec.filename} at {bad[0]} is corrupted (expected {spec.expected_hash}); it ships "
                f"with the package, so reinstall it ({REINSTALL})"
            )
        if bad:
            raise WeightsError(
                f"{spec.filename} at {bad[0]} is corrupted or a different version "
                f"(expected {spec.expected_hash}); delete it and run "
                f"'python main.py models fetch', or download {spec.url} again"
            )
        return None

    def resolve(self, spec: FileSpec, explicit: str | Path | None = None) -> Path:
        """The verified path of ``spec``'s file, downloading it if allowed."""
        if explicit is not None:
            path = Path(explicit).expanduser()
            if path.is_dir():
                raise WeightsError(f"checkpoint {path} is a folder; give the {spec.filename} file in it")
            if not path.is_file():
                raise WeightsError(f"checkpoint {path} does not exist; check the path")
            if not self._is_valid(spec, path):
                raise WeightsError(
                    f"checkpoint {path} is not {spec.filename} (expected {spec.expected_hash}); "
                    f"download it from {spec.url}"
                )
            return path
        path = self.locate(spec)
        if path is not None:
            return path
        if spec.packaged:
            raise self._missing(spec, "it ships with the package but is not in it")
        if not self.allow_download:
            raise self._missing(spec, "downloads are off")
        return self.download(spec)

    def _missing(self, spec: FileSpec, why: str) -> WeightsError:
        where = ", ".join(str(p) for p in self.search_path) or f"${SEARCH_PATH_ENV} (unset)"
        if spec.packaged:
            inside = ", ".join(str(p) for p in self.package_dirs) or "the package"
            return WeightsError(
                f"{spec.filename} not found ({why}); looked in {inside}, {where} and "
                f"{self.cache_dir}. Reinstall the package ({REINSTALL})"
            )
        return WeightsError(
            f"{spec.filename} not found ({why}); searched {where} and {self.cache_dir}. "
            f"Download {spec.url} (expected {spec.expected_hash}) into {self.cache_dir} "
            f"or a directory on ${SEARCH_PATH_ENV}"
        )

    # -- download ---------------------------------------------------------------------------
    def download(self, spec: FileSpec) -> Path:
        """Fetch ``spec`` into the cache: temp file, progress bar, verify, atomic rename."""
        from tqdm import tqdm

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        target = self.cache_dir / spec.filename

        def download(tmp_name: str) -> None:
            with open(tmp_name, "wb") as out, urllib.request.urlopen(spec.url, timeout=30) as response:
                total = int(response.headers.get("Content-Length") or 0) or spec.size
                with tqdm(total=total, unit="B", unit_scale=True, desc=spec.filename) as bar:
                    for chunk in iter(lambda: response.read(1 << 16), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
            if not matches(spec, Path(tmp_name)):
                raise WeightsError(
                    f"downloaded {spec.filename} from {spec.url} does not match {spec.expected_hash}; "
                    "the server sent a different file, so it was discarded"
                )

        try:  # beside the target, renamed only once its hash matches
            return atomic_write(target, download)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise self._missing(spec, f"download failed: {exc}") from exc
