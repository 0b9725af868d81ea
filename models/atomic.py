"""Files a user never sees half-written: artifacts, checkpoints, images, videos and recordings.

Two shapes. ``atomic_write`` is for files made in one go (a checkpoint, an ONNX graph, an image):
written to a temporary file beside the target and renamed over it only when complete. ``PartFile``
is for a job's output written over minutes (a video, a recording): it grows as ``<name>.part``
beside the target, kept playable by the writer, and is put in place by one rule:

* complete: renamed over the target;
* cut short (Ctrl-C, SIGTERM, an error) with frames in it: renamed to the target only when no file
  of that name exists, so an existing file is never replaced by a partial one; otherwise it stays
  as ``<name>.part`` and the caller says so;
* nothing written: removed.

After a SIGKILL or a power cut the ``.part`` file is left as it was and the target is untouched.
Every file gets the user's umask (``mkstemp`` alone would leave 0600).
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Callable

from models.errors import InputError

PART_SUFFIX = ".part"


def user_umask() -> int:
    """The process umask, read without changing it where Linux allows (else set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: str | Path, mode: int = 0o666) -> None:
    """Give ``path`` the permissions a plain ``open()`` would have: ``mode`` less the umask."""
    os.chmod(path, mode & ~user_umask())


def atomic_write(path: Path, save: Callable[[str], None]) -> Path:
    """Call ``save(tmp_name)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=PART_SUFFIX)
    os.close(fd)
    try:
        save(tmp)
        apply_umask(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def disk_of(path: str | Path) -> str:
    """The mount point holding ``path`` and its free space, for a 'disk full' message."""
    folder = Path(path).expanduser().absolute().parent
    mount = folder
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    try:
        free = os.statvfs(folder)
        return f"the disk mounted at {mount} ({free.f_bavail * free.f_frsize / 1e6:.1f} MB free)"
    except OSError:
        return f"the disk mounted at {mount}"


def is_disk_full(exc: BaseException) -> bool:
    """True for 'no space left' and 'quota exceeded' errors (also PyAV's, which subclass OSError)."""
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)


class PartFile:
    """A job's output growing as ``<target>.part`` beside ``target``; see the module docstring for the rule."""

    def __init__(self, target: str | Path) -> None:
        self.target = Path(target).expanduser()
        self.part = self.target.with_name(self.target.name + PART_SUFFIX)
        self.kept: Path | None = None  # where the frames ended up, once finished

    def create(self) -> Path:
        """Create (or truncate) the ``.part`` file now, so an unwritable folder fails before any work."""
        try:
            with open(self.part, "wb"):
                pass
        except IsADirectoryError:
            raise InputError(f"cannot write {self.part}: it is a folder; remove it or choose another name") from None
        except OSError as exc:
            raise InputError(f"cannot write to folder {self.target.parent}: {exc.strerror}; "
                             "choose another output folder") from None
        return self.part

    def commit(self) -> Path:
        """The job completed: the ``.part`` file replaces the target."""
        os.replace(self.part, self.target)
        self.kept = self.target
        return self.target

    def keep_partial(self) -> Path:
        """The job was cut short: the target's name if it is free, else the ``.part`` file stays."""
        try:
            os.link(self.part, self.target)  # fails if the target exists: never replaces a file
        except FileExistsError:
            self.kept = self.part
            return self.part
        except OSError:  # a file system without hard links (FAT, some network shares)
            if self.target.exists():
                self.kept = self.part
                return self.part
            os.replace(self.part, self.target)
        else:
            self.part.unlink()
        self.kept = self.target
        return self.target

    def discard(self) -> None:
        """Nothing worth keeping was written: remove the ``.part`` file; the target is untouched."""
        self.part.unlink(missing_ok=True)
        self.kept = None

    def finish(self, complete: bool, has_content: bool) -> Path | None:
        """Apply the rule; returns where the content is (None when nothing was kept)."""
        if not self.part.exists():
            return None
        if not has_content:
            self.discard()
            return None
        return self.commit() if complete else self.keep_partial()

    def describe_kept(self) -> str:
        """'out.mp4' or 'out.mp4.part (out.mp4 existed and was left as it was)'."""
        if self.kept == self.part:
            return f"{self.part} ({self.target.name} existed and was left as it was)"
        return str(self.kept) if self.kept else "no file"
