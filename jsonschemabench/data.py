"""Data loaders. Every loader yields *cases*: plain dicts (picklable, JSON-able)

    {"id": str, "subset": str, "schema": <JSON Schema>, "tests": [{"data", "valid", "description"}],
     "source": str}

MaskBench and GitHub cases carry ``relabelled``: ``valid`` is the verdict of
``Draft202012Validator(schema, format_checker=FormatChecker())``, the benchmark's definition, and
``relabelled`` counts the file labels it overrode.

Layouts:
- MaskBench files (``<Subset>---<name>.json`` or ``<Subset>_<n>.json``): ``{"schema", "tests", ...}``;
  a directory holding ``maskbench/`` (and ``maskbench_extra/``) works too.
- The benchmark's GitHub layout: ``data/<Subset>/*.json``, each file a bare schema (no tests).
- The Hugging Face parquet layout: ``*.parquet`` files with ``json_schema`` (string) and
  ``unique_id`` columns, one directory per subset, one file per split (``train``/``val``/``test``);
  needs ``pyarrow`` (or ``pandas``).
- The JSON Schema Test Suite: ``tests/draft2020-12/*.json``, lists of ``{description, schema, tests}``.

Selection: :func:`select` filters subsets and draws ``limit`` cases deterministically with a seed.
"""

from __future__ import annotations

import glob
import json
import os
import random
from typing import Iterable

OFFICIAL_SUBSETS = ["Glaiveai2K", "Github_trivial", "Github_easy", "Github_medium", "Github_hard",
                    "Github_ultra", "Snowplow", "Kubernetes", "WashingtonPost", "JsonSchemaStore"]


def _here_candidates() -> list[str]:
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return [os.environ.get("JSONSCHEMABENCH_DATA", ""),
            os.path.join(repo, "..", "shared", "jsonschemabench"),
            "/work/shared/jsonschemabench"]


def default_data_dir() -> str | None:
    for c in _here_candidates():
        if c and os.path.isdir(c):
            return os.path.normpath(c)
    return None


def default_test_suite_dir() -> str | None:
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for c in [os.path.join(repo, "..", "shared", "json-schema-test-suite"),
              "/work/shared/json-schema-test-suite"]:
        if os.path.isdir(c):
            return os.path.normpath(c)
    return None


# -- MaskBench --------------------------------------------------------------------------------
def subset_of_name(stem: str) -> str:
    if "---" in stem:
        return stem.split("---", 1)[0]
    if "_" in stem and stem.rsplit("_", 1)[1].isdigit():
        return stem.rsplit("_", 1)[0]
    return "default"


def _norm_tests(tests) -> list[dict]:
    out = []
    for t in tests or []:
        out.append({"data": t.get("data"), "valid": bool(t.get("valid")),
                    "description": t.get("description", "")})
    return out


def _by_validator(schema, tests: list[dict]) -> int:
    """Label every instance with the benchmark's own definition of validity,
    ``Draft202012Validator(schema, format_checker=FormatChecker())`` (the files' labels came from
    other validators and drafts and disagree with it on a few instances); returns how many labels
    changed. Where the validator itself fails on an instance, the file's label stays."""
    from jsonschema import Draft202012Validator, FormatChecker

    try:
        validator = Draft202012Validator(schema, format_checker=FormatChecker())
    except Exception:  # noqa: BLE001 - a schema the validator cannot load keeps its labels
        return 0
    changed = 0
    for t in tests:
        try:
            verdict = validator.is_valid(t["data"])
        except Exception:  # noqa: BLE001 - e.g. its crash on draft-4 array items reached via $ref
            continue
        if verdict != t["valid"]:
            t["valid"], changed = verdict, changed + 1
    return changed


def load_maskbench_file(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    stem = os.path.splitext(os.path.basename(path))[0]
    if isinstance(d, dict) and "schema" in d and "tests" in d:
        schema, tests = d["schema"], d["tests"]
    else:  # a bare schema
        schema, tests = d, []
    tests = _norm_tests(tests)
    relabelled = _by_validator(schema, tests)
    return {"id": stem, "subset": subset_of_name(stem), "schema": schema,
            "tests": tests, "source": path, "relabelled": relabelled}


def load_maskbench(path: str, include_extra: bool = False) -> list[dict]:
    """MaskBench files: a file, a directory of files, or a directory holding ``maskbench/``."""
    if os.path.isfile(path):
        return [load_maskbench_file(path)]
    dirs = []
    if os.path.isdir(os.path.join(path, "maskbench")):
        dirs.append(os.path.join(path, "maskbench"))
        if include_extra and os.path.isdir(os.path.join(path, "maskbench_extra")):
            dirs.append(os.path.join(path, "maskbench_extra"))
    else:
        dirs.append(path)
    cases = []
    for d in dirs:
        for p in sorted(glob.glob(os.path.join(d, "*.json"))):
            cases.append(load_maskbench_file(p))
    return cases


# -- GitHub layout ----------------------------------------------------------------------------
def load_github(root: str) -> list[dict]:
    """``data/<Subset>/*.json`` (``root`` may be the repo or its ``data`` folder)."""
    data = os.path.join(root, "data") if os.path.isdir(os.path.join(root, "data")) else root
    cases = []
    for sub in sorted(os.listdir(data)):
        sd = os.path.join(data, sub)
        if not os.path.isdir(sd):
            continue
        for p in sorted(glob.glob(os.path.join(sd, "*.json"))):
            with open(p, encoding="utf-8") as f:
                d = json.load(f)
            stem = os.path.splitext(os.path.basename(p))[0]
            tests = []
            if isinstance(d, dict) and "schema" in d and "tests" in d:
                d, tests = d["schema"], d["tests"]
            tests = _norm_tests(tests)
            relabelled = _by_validator(d, tests)
            cases.append({"id": f"{sub}---{stem}", "subset": sub, "schema": d,
                          "tests": tests, "source": p, "relabelled": relabelled})
    return cases


# -- Hugging Face parquet -----------------------------------------------------------------------
def _read_parquet(path: str) -> list[dict]:
    try:
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    except ImportError:
        pass
    try:
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    except ImportError as e:
        raise ImportError("reading parquet needs pyarrow or pandas (pip install pyarrow)") from e


def _split_of(filename: str) -> str:
    base = os.path.basename(filename).split(".")[0]
    return base.split("-")[0]


def load_parquet(path: str, split: str | None = None) -> list[dict]:
    """Parquet files with ``json_schema`` and ``unique_id``; subset = the file's directory name
    (or a ``subset`` column), split = the file name's prefix (``train-0000.parquet`` → train)."""
    files = [path] if os.path.isfile(path) else sorted(
        glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
    cases = []
    for p in files:
        sp = _split_of(p)
        if split and sp != split:
            continue
        parent = os.path.basename(os.path.dirname(p))
        for i, row in enumerate(_read_parquet(p)):
            raw = row.get("json_schema")
            schema = json.loads(raw) if isinstance(raw, str) else raw
            uid = str(row.get("unique_id", i))
            subset = row.get("subset") or (parent if parent not in ("", "data", ".") else "default")
            cases.append({"id": f"{subset}---{uid}", "subset": subset, "schema": schema,
                          "tests": [], "source": f"{p}#{i}", "split": sp})
    return cases


# -- JSON Schema Test Suite -------------------------------------------------------------------
def load_test_suite(root: str, draft: str = "draft2020-12", optional: bool = False) -> list[dict]:
    d = os.path.join(root, "tests", draft) if os.path.isdir(os.path.join(root, "tests")) else root
    files = sorted(glob.glob(os.path.join(d, "*.json")))
    if optional:
        files += sorted(glob.glob(os.path.join(d, "optional", "**", "*.json"), recursive=True))
    cases = []
    for p in files:
        rel = os.path.relpath(p, d)
        stem = os.path.splitext(rel)[0].replace(os.sep, "/")
        with open(p, encoding="utf-8") as f:
            groups = json.load(f)
        for i, g in enumerate(groups):
            cases.append({"id": f"{stem}#{i}", "subset": stem, "schema": g["schema"],
                          "tests": _norm_tests(g.get("tests")), "source": p,
                          "description": g.get("description", "")})
    return cases


# -- dispatch and selection -------------------------------------------------------------------
def detect_layout(path: str) -> str:
    if os.path.isfile(path):
        if path.endswith(".parquet"):
            return "parquet"
        with open(path, encoding="utf-8") as f:
            head = json.load(f)
        return "test-suite" if isinstance(head, list) else "maskbench"
    if os.path.isdir(os.path.join(path, "maskbench")):
        return "maskbench"
    if os.path.isdir(os.path.join(path, "tests", "draft2020-12")):
        return "test-suite"
    if glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True):
        return "parquet"
    data = os.path.join(path, "data") if os.path.isdir(os.path.join(path, "data")) else path
    if any(os.path.isdir(os.path.join(data, s)) for s in os.listdir(data)):
        return "github"
    return "maskbench"


def load(path: str | None = None, layout: str = "auto", include_extra: bool = False,
         split: str | None = None) -> list[dict]:
    path = path or default_data_dir()
    if not path or not os.path.exists(path):
        raise FileNotFoundError(f"data not found: {path!r} (give --data)")
    if layout == "auto":
        layout = detect_layout(path)
    if layout == "maskbench":
        return load_maskbench(path, include_extra=include_extra)
    if layout == "github":
        return load_github(path)
    if layout == "parquet":
        return load_parquet(path, split=split)
    if layout == "test-suite":
        return load_test_suite(path)
    raise ValueError(f"unknown layout {layout!r}")


def _subset_match(subset: str, wanted: Iterable[str]) -> bool:
    s = subset.lower()
    for w in wanted:
        w = w.strip().lower()
        if not w:
            continue
        if s == w or s.startswith(w.rstrip("*")) and (w.endswith("*") or s.startswith(w + "_")):
            return True
    return False


def select(cases: list[dict], subsets: Iterable[str] | None = None, limit: int | None = None,
           seed: int = 0, ids: Iterable[str] | None = None) -> list[dict]:
    """Filter by subset names (``Github`` matches every ``Github_*``; ``Git*`` prefixes) and by
    ids, then draw ``limit`` cases with ``random.Random(seed)``; the result is sorted by id so
    that it does not depend on the order the files were listed in."""
    out = sorted(cases, key=lambda c: c["id"])
    if subsets:
        subsets = [s for s in subsets if s]
        out = [c for c in out if _subset_match(c["subset"], subsets)]
    if ids:
        ids = set(ids)
        out = [c for c in out if c["id"] in ids]
    if limit is not None and 0 <= limit < len(out):
        out = sorted(random.Random(seed).sample(out, limit), key=lambda c: c["id"])
    return out
