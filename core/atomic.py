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

One writer per output: ``create`` takes an exclusive ``flock`` on the ``.part`` file before it
truncates it, and holds it until the file is put in place. (``flock``, not a POSIX record lock:
that one is dropped when the process closes any descriptor of the file, as the muxer does.) A
second job on the same output is refused in one line naming the first one's pid (read from
``/proc/locks`` where there is one); a ``.part`` left by a dead process holds no lock (the kernel
drops it with the process) and is reused.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Callable

from core.errors import InputError

try:
    import fcntl
except ImportError:  # Windows: no flock; one writer per output is then not enforced
    fcntl = None

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
        self._lock: int | None = None  # the open .part whose lock says this process writes it

    def create(self) -> Path:
        """Lock and create (or truncate) the ``.part`` file now, so a busy output or an unwritable folder fails
        before any work."""
        if self._lock is not None:  # already ours (a second create in the same job)
            os.ftruncate(self._lock, 0)
            return self.part
        try:
            fd = os.open(self.part, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except IsADirectoryError:
            raise InputError(f"cannot write {self.part}: it is a folder; remove it or choose another name") from None
        except OSError as exc:
            raise InputError(
                f"cannot write to folder {self.target.parent}: {exc.strerror}; choose another output folder"
            ) from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN, errno.EWOULDBLOCK):
                os.close(fd)
                raise InputError(f"cannot lock {self.part}: {exc.strerror}") from None
            holder = lock_holder(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise InputError(
                f"{self.target} is being written by another job ({who}); wait for it to end or choose another output"
            ) from None
        os.ftruncate(fd, 0)  # after the lock: a live job's file is never cut
        self._lock = fd
        return self.part

    def release(self) -> None:
        """Drop the lock (done by ``finish``, ``commit``, ``keep_partial`` and ``discard``)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def commit(self) -> Path:
        """The job completed: the ``.part`` file replaces the target."""
        os.replace(self.part, self.target)
        self.release()
        self.kept = self.target
        return self.target

    def keep_partial(self) -> Path:
        """The job was cut short: the target's name if it is free, else the ``.part`` file stays."""
        self.release()  # a .part that stays may be resumed into by the next job
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
        self.release()
        self.kept = None

    def finish(self, complete: bool, has_content: bool) -> Path | None:
        """Apply the rule; returns where the content is (None when nothing was kept)."""
        if not self.part.exists():
            self.release()
            return None
        if not has_content:
            self.discard()
            return None
        return self.commit() if complete else self.keep_partial()

    def __del__(self) -> None:
        self.release()

    def describe_kept(self) -> str:
        """'out.mp4' or 'out.mp4.part (out.mp4 existed and was left as it was)'."""
        if self.kept == self.part:
            return f"{self.part} ({self.target.name} existed and was left as it was)"
        return str(self.kept) if self.kept else "no file"


def lock_holder(fd: int) -> int | None:
    """The pid of the process holding a ``flock`` on ``fd``'s file, from ``/proc/locks`` (Linux); None elsewhere."""
    st = os.fstat(fd)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:  # "1: FLOCK  ADVISORY  WRITE 18241 08:01:1234 0 EOF"
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device and fields[4].isdigit():
            return int(fields[4])
    return None


def is_being_written(part: str | Path) -> bool:
    """True while a live job holds ``part``'s lock (a ``.part`` left by a dead process is not)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(part, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock just taken
    return False
