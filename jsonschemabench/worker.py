"""Process isolation: one long-lived worker process, restarted when it hangs or dies.

The worker is started with the ``spawn`` method (a fresh interpreter: no inherited threads or
tokenizer state), sets ``RLIMIT_AS`` (address-space limit; default 8 GiB, which leaves room for
torch/numpy/engine imports — they reserve a few GiB of address space — while stopping a runaway
compile long before it takes the machine down), redirects its stdout/stderr to a log file, runs an
initializer once (load tokenizer, set up an engine), then serves tasks.

The parent sends a task and waits with a deadline. A task may report progress messages (e.g.
"compiled") that switch to the next deadline. When a deadline passes, the worker is killed
(SIGKILL) and the task is reported as a timeout; when the worker dies (segfault, abort, out of
memory, ``os._exit``) the task is a crash. Either way the next task gets a fresh worker.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

DEFAULT_MEM_LIMIT_GB = 8.0


@dataclass
class Outcome:
    status: str                 # "ok" | "timeout" | "crash" | "error"
    payload: Any = None         # handler's return value when ok
    phase: str | None = None    # phase in which a timeout/crash happened
    detail: str = ""            # exit code / traceback / message
    progress: list = field(default_factory=list)  # progress messages received
    wall_s: float = 0.0


def _resolve(spec: str) -> Callable:
    import importlib

    mod, _, fn = spec.rpartition(":")
    return getattr(importlib.import_module(mod), fn)


def _die_with_parent():
    """Linux: have the kernel SIGKILL this worker when the parent process dies (a killed benchmark
    must not leave a worker spinning on a pathological schema)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except Exception:
        pass


def _worker_main(conn, init_spec: str, init_args: dict, mem_limit_bytes: int | None,
                 log_path: str | None):
    _die_with_parent()
    if log_path:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    if mem_limit_bytes:
        import resource

        try:
            resource.setrlimit(resource.RLIMIT_AS, (mem_limit_bytes, mem_limit_bytes))
        except (ValueError, OSError):
            pass
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        handler = _resolve(init_spec)(init_args)
        # What setup loaded (transformers alone is ~200k objects) is kept for the worker's life:
        # frozen, as servers freeze it after start-up, so that a full collection over it (~0.2 s)
        # does not land in whichever timed call happens to trigger one. Each engine's own objects
        # are collected as usual.
        gc.collect()
        gc.freeze()
        conn.send(("ready", None))
    except BaseException:
        conn.send(("init_error", traceback.format_exc()))
        return

    def emit(msg):
        conn.send(("progress", msg))

    while True:
        try:
            task = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if task is None:
            return
        try:
            result = handler(task, emit)
            # Untimed: the objects of this task that only the collector frees (reference cycles)
            # are freed now, not in whichever timed call of the next task triggers a collection.
            gc.collect()
            conn.send(("done", result))
        except MemoryError:
            conn.send(("error", "MemoryError (address-space limit reached)"))
            return  # the heap may be in a bad state: let the parent start a fresh worker
        except BaseException:
            conn.send(("error", traceback.format_exc()[-4000:]))


class WorkerStartError(RuntimeError):
    pass


class IsolatedWorker:
    """A restartable worker process running ``init_spec(init_args) -> handler(task, emit)``."""

    def __init__(self, init_spec: str, init_args: dict, mem_limit_gb: float | None = DEFAULT_MEM_LIMIT_GB,
                 log_path: str | None = None, start_timeout: float = 600.0, spare: bool = True):
        self.init_spec = init_spec
        self.init_args = init_args
        self.mem_limit_bytes = int(mem_limit_gb * (1 << 30)) if mem_limit_gb else None
        self.log_path = log_path
        self.start_timeout = start_timeout
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self._conn = None
        self.spare = spare
        self._spare = None
        self.starts = 0
        self.start_seconds = 0.0

    # -- lifecycle ------------------------------------------------------------------------------
    def _spawn(self):
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, daemon=True,
                                 args=(child, self.init_spec, self.init_args, self.mem_limit_bytes,
                                       self.log_path))
        proc.start()
        child.close()
        self.starts += 1
        return proc, parent

    def _await_ready(self, proc, parent):
        if not parent.poll(self.start_timeout):
            _kill_proc(proc, parent)
            raise WorkerStartError(f"worker did not start within {self.start_timeout:.0f}s")
        try:
            kind, info = parent.recv()
        except EOFError:
            proc.join(timeout=10)
            code = proc.exitcode
            _kill_proc(proc, parent)
            raise WorkerStartError(f"worker died during start (exit code {code}); see {self.log_path}")
        if kind != "ready":
            _kill_proc(proc, parent)
            raise WorkerStartError(f"worker initialization failed:\n{info}")

    def _start(self):
        t0 = time.perf_counter()
        if self._spare is not None:  # a warm replacement is waiting (or still starting)
            proc, parent = self._spare
            self._spare = None
        else:
            proc, parent = self._spawn()
        self._proc, self._conn = proc, parent
        try:
            self._await_ready(proc, parent)
        except WorkerStartError:
            self._proc = self._conn = None
            raise
        self.start_seconds += time.perf_counter() - t0
        if self.spare and self.starts > 1 and self._spare is None:
            # after the first restart, keep one replacement starting in the background, so the
            # next timeout or crash does not pay the start-up (imports, tokenizer, engine setup)
            self._spare = self._spawn()

    def _kill(self):
        if self._proc is not None:
            _kill_proc(self._proc, self._conn)
        self._proc = None
        self._conn = None

    def ensure_started(self):
        if self._proc is None or not self._proc.is_alive():
            self._kill()
            self._start()

    def close(self):
        for proc, conn in [(self._proc, self._conn), self._spare or (None, None)]:
            if proc is not None and proc.is_alive():
                try:
                    conn.send(None)
                    proc.join(timeout=5)
                except Exception:
                    pass
            if proc is not None:
                _kill_proc(proc, conn)
        self._spare = None
        self._kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- tasks ----------------------------------------------------------------------------------
    def run(self, task: Any, deadlines: list[tuple[str, float]]) -> Outcome:
        """Run one task. ``deadlines`` is a list of (phase name, seconds): the first applies from
        the start, each progress message moves to the next phase (last one applies until done)."""
        self.ensure_started()
        t0 = time.perf_counter()
        out = Outcome(status="ok")
        phase_i = 0
        phase, limit = deadlines[0]
        phase_start = time.perf_counter()
        self._conn.send(task)
        while True:
            remaining = limit - (time.perf_counter() - phase_start)
            try:
                ready = remaining > 0 and self._conn.poll(remaining)
            except (EOFError, OSError):
                ready = True
            if not ready:
                self._kill()
                out.status, out.phase, out.detail = "timeout", phase, f"{phase} exceeded {limit:g}s"
                break
            try:
                kind, msg = self._conn.recv()
            except (EOFError, OSError):
                self._proc.join(timeout=10)
                code = self._proc.exitcode
                self._kill()
                out.status, out.phase = "crash", phase
                out.detail = _describe_exit(code)
                break
            if kind == "progress":
                out.progress.append(msg)
                if phase_i + 1 < len(deadlines):
                    phase_i += 1
                    phase, limit = deadlines[phase_i]
                    phase_start = time.perf_counter()
                continue
            if kind == "done":
                out.payload = msg
                break
            # "error": the handler raised (a bug, or MemoryError)
            out.status, out.phase, out.detail = "error", phase, str(msg)
            if "MemoryError" in str(msg):
                out.status = "crash"
                self._proc.join(timeout=10)
                self._kill()
            break
        out.wall_s = time.perf_counter() - t0
        return out


def _kill_proc(proc, conn):
    if proc.is_alive():
        proc.kill()
    proc.join(timeout=10)
    if conn is not None:
        conn.close()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "worker vanished"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker killed by {name}"
    return f"worker exited with code {code}"
