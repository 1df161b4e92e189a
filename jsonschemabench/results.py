"""JSONL result files: one JSON object per line, appended and flushed as each result arrives,
so an interrupted run loses at most the schema in flight and can be resumed."""

from __future__ import annotations

import json
import os


def read_jsonl(path: str) -> list[dict]:
    out = []
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by an interruption
    return out


class JsonlWriter:
    def __init__(self, path: str):
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        # repair a last line cut by an interruption (no trailing newline)
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path, "rb+") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
        self._f = open(path, "a", encoding="utf-8")

    def write(self, rec: dict):
        self._f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._f.flush()

    def close(self):
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
