"""The driver of a cluster job: plan, dispatch chunks to Ray workers, keep what finished, join.

One job: index the input (``cluster.plan``), load or make the plan in the work folder beside the
output (``<output>.work``), start one Ray actor per worker (``cluster.worker.ChunkWorker``: one
GPU each with ``--device cuda``, a share of the CPUs otherwise), hand chunks to idle workers, save
every finished chunk at once, and when all are there join them (``cluster.join``) into the output.

Faults: a worker process that dies is restarted by Ray and its chunk retried there (actor
restarts and task retries); a chunk whose stylising raises is retried up to ``retries`` times on any
worker. A chunk that still fails is reported by number, frames, times and reason, and the job ends
without an output, keeping the finished chunks: the same command resumes from them (a plan whose
input or settings changed starts over). Ctrl-C stops the workers and keeps the work folder too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from cluster.join import ChunkFile, JoinResult, join_chunks, muxer_for
from cluster.plan import Chunk, VideoIndex, index_video, plan_chunks, warmup_frames
from cluster.worker import ChunkFrames, ChunkResult, ChunkWorker, EncodeSpec, WorkerSpec
from core.atomic import PartFile, atomic_write
from core.errors import InputError, StylizerError
from realtime.video_writer import VideoOptions, container_codec

log = logging.getLogger(__name__)

INSTALL_HINT = "--workers needs Ray: pip install -e '.[cluster]' (or pip install 'ray>=2.9')"
PLAN_VERSION = 2  # 2: frames counted as the engine decodes them (best-effort times), not by packet pts
POLL = 0.25  # seconds between progress polls


class ClusterError(StylizerError):
    """A cluster job could not run or did not complete (which chunks and why are in the message)."""


@dataclass(frozen=True)
class ClusterConfig:
    """How a job is spread: worker count, which cluster, retries, chunking, warm-up."""

    workers: int
    address: str = "auto"  # "auto": start a local Ray sized to this machine; else join that cluster
    retries: int = 2  # per chunk (application errors) and per worker (process deaths)
    chunks_per_worker: int | None = None  # None: balance the tail against warm-ups (chunk_count)
    warmup: int | None = None  # None: from the temporal mode (cluster.plan.warmup_frames)
    ship_input: bool | None = None  # send the input through Ray's object store; None: only to a remote cluster
    keep_work: bool = False  # keep the work folder after a successful join
    min_chunk: int = 24


@dataclass
class WorkerCount:
    """What one worker did in this run."""

    host: str = ""
    chunks: int = 0
    frames: int = 0
    seconds: float = 0.0
    pids: set[int] = field(default_factory=set)
    restarted: bool = False  # a result came from a process Ray restarted after this worker died

    @property
    def restarts(self) -> int:
        """Times (at least) the worker's process was replaced (it died and Ray restarted it)."""
        return max(len(self.pids) - 1, int(self.restarted))


@dataclass
class JobReport:
    """The outcome of a job: frames, chunks (resumed and made here), per-worker counts, timings."""

    output: Path
    frames: int
    chunks: int
    resumed: int
    warmup: int
    retried: int
    workers: dict[int, WorkerCount] = field(default_factory=dict)
    seconds: float = 0.0
    startup_seconds: float = 0.0  # until every worker had loaded its stylizer (chunks start as each is ready)
    join_seconds: float = 0.0
    audio: str = "none"

    def describe_workers(self) -> list[str]:
        lines = []
        for i, w in sorted(self.workers.items()):
            fps = w.frames / w.seconds if w.seconds else 0.0
            extra = f", restarted {w.restarts}x" if w.restarts else ""
            lines.append(f"worker {i} ({w.host}): {w.chunks} chunks, {w.frames} frames, {fps:.1f} fps{extra}")
        return lines


LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's node address is 127.0.0.1
Progress = Callable[[int, int], None]  # (frames done over all workers, total frames)


def require_ray(local_only: bool = True):
    """The ``ray`` module, or a one-line error saying how to install it.

    ``local_only`` (a Ray started here for this machine): every Ray process binds to loopback. Ray
    reads the switch when it is imported, so it is set before the import; on Linux Ray would
    otherwise listen on the machine's network address, which a single-machine job never needs.
    """
    if local_only and "ray" not in sys.modules:
        os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return ray


def run_job(
    input_path: Path,
    output: Path,
    spec: WorkerSpec,
    options: VideoOptions,
    config: ClusterConfig,
    progress: Progress | None = None,
    say: Callable[[str], None] = print,
) -> JobReport:
    """Stylise ``input_path`` into ``output`` over ``config.workers`` Ray workers; resumes from the work folder."""
    ray = require_ray(local_only=config.address == "auto")
    if config.workers < 1:
        raise InputError(f"--workers must be at least 1, got {config.workers}")
    started = time.perf_counter()
    input_path, output = Path(input_path), Path(output)
    muxer_for(output)  # a bad suffix fails before any work
    lock = PartFile(output)
    lock.create()  # one job per output: a second one is refused here, naming this one's pid
    try:
        return _run_locked(ray, input_path, output, spec, options, config, progress, say, started, lock)
    finally:
        if lock.part.exists() and lock.part.stat().st_size == 0:
            lock.discard()  # the join never started (or found nothing): no empty .part is left
        lock.release()


def _run_locked(
    ray,
    input_path: Path,
    output: Path,
    spec: WorkerSpec,
    options: VideoOptions,
    config: ClusterConfig,
    progress: Progress | None,
    say: Callable[[str], None],
    started: float,
    lock: PartFile,
) -> JobReport:
    index = index_video(input_path)
    if index.resized:  # as VideoFileSource says it in one process
        log.warning(
            "%s changes its frame size (%d frames): such frames are scaled to fit %dx%d with black bars",
            input_path.name,
            index.resized,
            *index.size,
        )
    options = options if options.codec else replace(options, codec=container_codec(output))  # the writer's choice
    encode = EncodeSpec(index.rate, options, output.suffix.lower())
    mode, strength = spec_temporal(spec)
    warmup = config.warmup if config.warmup is not None else warmup_frames(mode, strength)
    work = WorkFolder(output)
    fingerprint = _fingerprint(input_path, spec, encode, warmup)
    plan = work.load_plan(fingerprint, say)
    if plan is None:
        plan = plan_chunks(
            index, chunk_count(index.frames, config.workers, warmup, config.chunks_per_worker), warmup, config.min_chunk
        )
        work.save_plan(fingerprint, plan)
    done = {c.index for c in plan if work.has(c)}
    todo = [c for c in plan if c.index not in done]
    report = JobReport(output, index.frames, len(plan), len(done), warmup, 0)
    say(
        f"{len(plan)} chunks of about {index.frames // len(plan)} frames, {warmup} warm-up frames each"
        + (f"; {len(done)} already done in {work.path}" if done else "")
    )
    if todo:
        started_ray = connect(ray, config)
        try:
            _dispatch(
                ray,
                todo,
                plan,
                index,
                input_path,
                spec,
                encode,
                config,
                work,
                report,
                progress,
                sum(c.frames for c in plan if c.index in done),
            )
        except KeyboardInterrupt:
            say(
                f"interrupted: {len(work.finished(plan))} of {len(plan)} chunks are kept in {work.path}; "
                "run the same command again to resume"
            )
            raise
        finally:
            if started_ray:
                ray.shutdown()
    elif progress is not None:
        progress(index.frames, index.frames)
    t = time.perf_counter()
    files = [ChunkFile(work.chunk_path(c), index.time(c.start), c.frames) for c in plan]
    joined: JoinResult = join_chunks(files, output, input_path if options.audio else None, lock)
    report.join_seconds = time.perf_counter() - t
    report.audio = joined.audio
    if joined.frames != index.frames:
        raise ClusterError(
            f"the joined file has {joined.frames} frames, the input {index.frames}; the chunks stay in {work.path}"
        )
    if not config.keep_work:
        work.remove()
    report.seconds = time.perf_counter() - started
    return report


def chunk_count(frames: int, workers: int, warmup: int, per_worker: int | None = None) -> int:
    """How many chunks: ``per_worker`` each if given, else the count that minimises a worker's extra frames.

    A worker waits at the end for the last chunks (about half a chunk, ``frames / (2 C)``) and pays a
    warm-up per chunk (``C * warmup / workers``); the sum is least at ``C = sqrt(frames * workers /
    (2 * warmup))``. Kept within 2-8 per worker: at least two to even out start-up, at most eight (each
    chunk is a file and a round trip).
    """
    if per_worker:
        return workers * per_worker
    if not warmup:
        return 8 * workers
    return int(min(8 * workers, max(2 * workers, round(math.sqrt(frames * workers / (2 * warmup))))))


def spec_temporal(spec: WorkerSpec) -> tuple[str, float]:
    """The temporal mode and strength a spec renders with ("off" when it has none)."""
    params = getattr(spec, "params", None)
    return getattr(params, "temporal", "off"), float(getattr(params, "stability", 0.0) or 0.0)


# ----- Ray -----


def connect(ray, config: ClusterConfig) -> bool:
    """Join the configured cluster or start a local one; True when we started it (and must stop it)."""
    if ray.is_initialized():  # a caller (tests, a notebook) already connected
        return False
    # Ray's own INFO/WARNING lines (auth token set-up, start-up) would break the progress bar; errors still show.
    common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    handlers = _signal_handlers()
    try:
        if config.address == "auto":
            # Workers on this machine import this checkout, installed or not.
            root = str(Path(__file__).resolve().parents[1])
            path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
            ray.init(
                address="local", num_cpus=os.cpu_count() or 1, runtime_env={"env_vars": {"PYTHONPATH": path}}, **common
            )
        else:
            ray.init(address=config.address, **common)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(
            f"cannot reach the Ray cluster at {config.address}: {exc}; start it with "
            "`ray start --head` on the head node, or use --cluster auto"
        ) from exc
    finally:
        _restore(handlers)  # ray.init puts its own SIGTERM handler (exit 1, a stack dump) over main.py's
    return True


def _signal_handlers() -> dict:
    """The current SIGTERM/SIGINT handlers (main thread only: elsewhere signals are not ours to keep)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore(handlers: dict) -> None:
    import signal

    for sig, handler in handlers.items():
        if handler is not None and signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)


def _resources(ray, config: ClusterConfig, spec: WorkerSpec) -> tuple[int, dict[str, float], int]:
    """(workers, Ray resources per worker, threads per worker) for this cluster."""
    total = ray.cluster_resources()
    cpus, gpus = float(total.get("CPU", 1)), int(total.get("GPU", 0))
    workers = config.workers
    if str(getattr(spec, "device", "cpu")).startswith("cuda"):
        if gpus < 1:
            raise ClusterError("--device cuda but the Ray cluster has no GPU; use --device cpu")
        if workers > gpus:
            log.warning("%d workers asked, the cluster has %d GPUs: using %d", workers, gpus, gpus)
            workers = gpus
        share = max(0.01, math.floor(100 * min(1.0, cpus / workers)) / 100)
        return workers, {"num_gpus": 1, "num_cpus": share}, max(1, int(cpus // workers))
    share = cpus / workers
    share = float(math.floor(share)) if share >= 1 else math.floor(share * 1000) / 1000
    return workers, {"num_cpus": max(share, 0.001)}, max(1, int(share))


def _progress_board(ray):
    @ray.remote(num_cpus=0)
    class ProgressBoard:
        """Frames written so far per chunk, reported by the workers, read by the driver."""

        def __init__(self) -> None:
            self.frames: dict[int, int] = {}

        def report(self, chunk: int, frames: int) -> None:
            self.frames[chunk] = frames

        def snapshot(self) -> dict[int, int]:
            return dict(self.frames)

    return ProgressBoard.remote()


def _dispatch(
    ray,
    todo: list[Chunk],
    plan: list[Chunk],
    index: VideoIndex,
    input_path: Path,
    spec: WorkerSpec,
    encode: EncodeSpec,
    config: ClusterConfig,
    work: "WorkFolder",
    report: JobReport,
    progress: Progress | None,
    resumed_frames: int,
) -> None:
    from ray.exceptions import RayActorError, RayTaskError

    n, resources, threads = _resources(ray, config, spec)
    remote = ray.remote(ChunkWorker).options(max_restarts=config.retries, max_task_retries=config.retries, **resources)
    t0 = time.perf_counter()
    actors = [remote.remote(spec, i, threads) for i in range(n)]
    ready_pings = [a.pid.remote() for a in actors]  # answered once a worker's constructor has run
    board = _progress_board(ray)
    ship = config.ship_input if config.ship_input is not None else config.address != "auto"
    source: Any = ray.put(input_path.read_bytes()) if ship else str(input_path.resolve())
    pending = deque(todo)
    idle = deque(range(n))
    inflight: dict[Any, tuple[Chunk, int]] = {}
    attempts: dict[int, int] = {}
    failed: dict[int, str] = {}
    done_frames = resumed_frames
    try:
        while pending or inflight:
            while idle and pending:
                worker, chunk = idle.popleft(), pending.popleft()
                attempts[chunk.index] = attempts.get(chunk.index, 0) + 1
                inflight[actors[worker].run.remote(chunk, source, encode, ChunkFrames.of(index, chunk), board)] = (
                    chunk,
                    worker,
                )
            if not inflight:  # chunks left but every worker is gone
                for chunk in pending:
                    failed[chunk.index] = "no worker left to run it (all died)"
                break
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL)
            if ready_pings:
                ready_pings = ray.wait(ready_pings, num_returns=len(ready_pings), timeout=0)[1]
                if not ready_pings:
                    report.startup_seconds = time.perf_counter() - t0
            for ref in ready:
                chunk, worker = inflight.pop(ref)
                try:
                    result: ChunkResult = ray.get(ref)
                except RayActorError as exc:  # the worker died and Ray's restarts are used up
                    _retry_or_fail(
                        chunk, f"its worker died ({_first_line(exc)})", attempts, config, pending, failed, report
                    )
                    continue
                except RayTaskError as exc:
                    idle.append(worker)
                    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                    why = f"{type(cause).__name__}: {_first_line(cause)}"
                    if isinstance(cause, StylizerError):  # the input or settings: the same chunk fails the same way
                        failed[chunk.index] = f"{why} (not retried: it fails the same way each time)"
                        pending.clear()  # the other chunks share the input and settings: stop at the first
                        continue
                    _retry_or_fail(chunk, why, attempts, config, pending, failed, report)
                    continue
                idle.append(worker)
                work.save(chunk, result)
                done_frames += result.frames
                count = report.workers.setdefault(result.worker, WorkerCount(host=result.host))
                count.chunks += 1
                count.frames += result.frames
                count.seconds += result.seconds
                count.pids.add(result.pid)
                count.restarted |= result.restarted
            if progress is not None:
                live = ray.get(board.snapshot.remote())
                running = sum(live.get(c.index, 0) for c, _ in inflight.values())
                progress(done_frames + running, index.frames)
    except BaseException:
        for actor in actors:  # Ctrl-C or an error here: stop the workers; finished chunks are saved already
            ray.kill(actor, no_restart=True)
        raise
    for actor in actors:
        ray.kill(actor, no_restart=True)
    if failed:
        lines = "; ".join(f"{plan[i].describe(index)}: {why}" for i, why in sorted(failed.items()))
        raise ClusterError(
            f"{len(failed)} of {len(plan)} chunks failed for good: {lines}; the "
            f"{len(work.finished(plan))} finished chunks are kept in {work.path}: run the same "
            "command again to retry the rest"
        )


def _retry_or_fail(
    chunk: Chunk,
    why: str,
    attempts: dict[int, int],
    config: ClusterConfig,
    pending: deque,
    failed: dict[int, str],
    report: JobReport,
) -> None:
    tries = attempts.get(chunk.index, 0)
    if tries <= config.retries:
        log.warning("chunk %d failed (%s); retrying (%d/%d)", chunk.index, why, tries, config.retries)
        report.retried += 1
        pending.appendleft(chunk)
    else:
        failed[chunk.index] = f"{why} (tried {tries} times)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ----- inputs and settings -----


def _fingerprint(input_path: Path, spec: WorkerSpec, encode: EncodeSpec, warmup: int) -> str:
    """What the chunks depend on: the input file, the stylizer, the encoder settings and the warm-up."""
    stat = input_path.stat()
    describe = getattr(spec, "fingerprint", None)
    parts = [
        str(input_path.resolve()),
        stat.st_size,
        stat.st_mtime_ns,
        describe() if callable(describe) else repr(spec),
        repr(encode),
        warmup,
        PLAN_VERSION,
    ]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


# ----- the work folder -----


class WorkFolder:
    """``<output>.work``: the plan and every finished chunk, each written whole (``.part`` then rename)."""

    def __init__(self, output: Path) -> None:
        self.output = Path(output)
        self.path = self.output.with_name(self.output.name + ".work")
        self.suffix = self.output.suffix.lower()

    def chunk_path(self, chunk: Chunk) -> Path:
        return self.path / f"{chunk.name}{self.suffix}"

    def _meta_path(self, chunk: Chunk) -> Path:
        return self.path / f"{chunk.name}.json"

    def load_plan(self, fingerprint: str, say: Callable[[str], None]) -> list[Chunk] | None:
        job = self.path / "job.json"
        if not job.is_file():
            return None
        try:
            data = json.loads(job.read_text())
            if data.get("fingerprint") == fingerprint:
                return [Chunk(**c) for c in data["chunks"]]
        except (OSError, ValueError, TypeError, KeyError):
            pass
        say(f"{self.path} holds chunks of another input or other settings: starting over")
        shutil.rmtree(self.path, ignore_errors=True)
        return None

    def save_plan(self, fingerprint: str, plan: list[Chunk]) -> None:
        try:
            self.path.mkdir(exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the work folder {self.path}: {exc.strerror}") from None
        _write_whole(
            self.path / "job.json",
            json.dumps({"fingerprint": fingerprint, "chunks": [asdict(c) for c in plan]}, indent=1).encode(),
        )

    def has(self, chunk: Chunk) -> bool:
        try:
            meta = json.loads(self._meta_path(chunk).read_text())
            return meta["frames"] == chunk.frames and self.chunk_path(chunk).stat().st_size == meta["bytes"]
        except (OSError, ValueError, KeyError):
            return False

    def finished(self, plan: list[Chunk]) -> list[Chunk]:
        return [c for c in plan if self.has(c)]

    def save(self, chunk: Chunk, result: ChunkResult) -> None:
        _write_whole(self.chunk_path(chunk), result.data)
        meta = {
            "frames": result.frames,
            "bytes": len(result.data),
            "worker": result.worker,
            "host": result.host,
            "seconds": round(result.seconds, 3),
        }
        _write_whole(self._meta_path(chunk), json.dumps(meta).encode())

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _write_whole(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
