"""Progress bar with ETA: tqdm when installed, else a small one of our own (stderr)."""

from __future__ import annotations

import sys
import time


class _Plain:
    def __init__(self, total: int, desc: str = "", file=None):
        self.total, self.desc, self.n = total, desc, 0
        self.file = file or sys.stderr
        self.t0 = time.perf_counter()
        self.postfix = ""
        self._last = 0.0
        self._tty = hasattr(self.file, "isatty") and self.file.isatty()
        self._draw(force=True)

    def set_description(self, desc: str, refresh: bool = False):
        self.desc = desc

    def set_postfix_str(self, s: str, refresh: bool = False):
        self.postfix = s

    def update(self, k: int = 1):
        self.n += k
        self._draw()

    def _draw(self, force=False):
        now = time.perf_counter()
        if not force and now - self._last < (0.2 if self._tty else 15.0) and self.n < self.total:
            return
        self._last = now
        el = now - self.t0
        rate = self.n / el if el > 0 else 0.0
        eta = (self.total - self.n) / rate if rate > 0 else float("nan")
        frac = self.n / self.total if self.total else 1.0
        bar = "#" * int(frac * 24)
        line = (f"{self.desc} [{bar:<24}] {self.n}/{self.total} {frac:5.1%} "
                f"{_fmt(el)} elapsed, ETA {_fmt(eta)} {self.postfix}")
        self.file.write(("\r" + line[:200]) if self._tty else line + "\n")
        self.file.flush()

    def close(self):
        self._draw(force=True)
        if self._tty:
            self.file.write("\n")
            self.file.flush()


def _fmt(s: float) -> str:
    if s != s:  # nan
        return "?"
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def bar(total: int, desc: str = "", enabled: bool = True):
    if not enabled:
        return _Null()
    try:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, dynamic_ncols=True, file=sys.stderr,
                    mininterval=0.5 if sys.stderr.isatty() else 15.0)
    except ImportError:
        return _Plain(total, desc)


class _Null:
    def set_description(self, *a, **k):
        pass

    def set_postfix_str(self, *a, **k):
        pass

    def update(self, *a):
        pass

    def close(self):
        pass
