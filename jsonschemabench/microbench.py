"""Micro-benchmark worker (used by ``benchmarks/foundation.py``): compile one schema or regex,
then drive a sample string token by token, timing every mask."""

from __future__ import annotations

import json
import time

import numpy as np

from .engines.base import mask_allows


def worker_init(args: dict):
    from .engines import make_adapter
    from .tokenizers import load_tokenizer

    tok = load_tokenizer(args["tokenizer"])
    t0 = time.perf_counter()
    adapter = make_adapter(args["engine_spec"], tok)
    setup_s = time.perf_counter() - t0

    def handle(task, emit):
        if task.get("op") == "setup":
            return {"setup_s": setup_s}
        return run_item(adapter, tok, task, emit)

    return handle


def run_item(adapter, tok, task, emit) -> dict:
    pc = time.perf_counter_ns
    a = pc()
    try:
        if task["kind"] == "regex":
            g = adapter.compile_regex(task["source"])
        else:
            g = adapter.compile_json_schema(task["source"])
    except MemoryError:
        raise  # the worker is at its limit: it must be replaced (see worker.py)
    except Exception as e:
        return {"status": "compile_error", "error": f"{type(e).__name__}: {e}"[:300]}
    rec = {"status": "ok", "compile_us": (pc() - a) / 1000}
    emit("compiled")
    tokens = tok.encode(task["sample"], add_special_tokens=False)
    times = []
    accepted = True
    for rep in range(task.get("repeats", 1)):
        g.reset()
        for t in tokens:
            a = pc()
            g.fill_mask()
            times.append((pc() - a) / 1000)
            if not mask_allows(g.mask, t) or not g.accept_token(t):
                accepted = False
                break
        if accepted:
            accepted = g.is_accepting()
        if not accepted:
            break
    # first pass = cold masks; the rest are warm (cache hits for engines that cache)
    n = len(tokens)
    arr = np.asarray(times)
    rec.update(tokens=n, accepted=bool(accepted), masks=int(arr.size),
               mask_mean=float(arr.mean()) if arr.size else None,
               mask_p50=float(np.percentile(arr, 50)) if arr.size else None,
               mask_p99=float(np.percentile(arr, 99)) if arr.size else None,
               mask_max=float(arr.max()) if arr.size else None,
               cold_mean=float(arr[:n].mean()) if arr.size else None)
    return rec
