"""The benchmark harness (jsonschemabench): metric definitions, loaders, isolation, reports.

Fast (no model, no real engine): fake engines registered only here run in real worker processes.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from jsonschemabench import data, metrics
from jsonschemabench.engines import mask_allows, register, ENGINES
from jsonschemabench.results import read_jsonl
from jsonschemabench.validate import rescore

ROOT = Path(__file__).resolve().parent.parent
SUITE = next((p for p in [ROOT.parent / "shared" / "json-schema-test-suite",
                          Path("/work/shared/json-schema-test-suite")] if p.is_dir()), None)


# ------------------------------------------------------------------------------------- metrics
def _gen(engine, compiled, valid, subset="S"):
    return {"kind": "generate", "engine": engine, "compiled": compiled, "valid": valid, "subset": subset,
            "schema_id": f"{subset}-{id(object())}"}


def test_coverage_and_compliance_definitions():
    recs = [_gen("e", True, True), _gen("e", True, True), _gen("e", True, False),
            _gen("e", False, False), _gen("e", False, True)]  # a non-compiled "valid" counts 0
    c = metrics.coverage(recs)
    assert c["n"] == 5 and c["compiled"] == 3 and c["valid"] == 2
    assert c["declared_coverage"] == pytest.approx(3 / 5)
    assert c["empirical_coverage"] == pytest.approx(2 / 5)
    assert c["compliance"] == pytest.approx(2 / 3)
    # compliance = empirical / declared
    assert c["compliance"] == pytest.approx(c["empirical_coverage"] / c["declared_coverage"])


def test_bootstrap_is_deterministic_with_a_seed():
    recs = [_gen("e", i % 5 != 0, i % 3 != 0) for i in range(40)]
    a = metrics.bootstrap(recs, "empirical_coverage", n_boot=300, seed=7)
    b = metrics.bootstrap(recs, "empirical_coverage", n_boot=300, seed=7)
    assert a == b
    assert a["lo"] <= a["median"] <= a["hi"]
    point = metrics.coverage(recs)["empirical_coverage"]
    assert abs(a["median"] - point) < 0.1
    c = metrics.bootstrap(recs, "compliance", n_boot=300, seed=8)
    assert 0 <= c["lo"] <= c["hi"] <= 1
    # all-or-nothing data: no spread
    full = metrics.bootstrap([_gen("e", True, True)] * 10, "compliance", n_boot=50, seed=0)
    assert full["lo"] == full["hi"] == 1.0


def _mb(engine, sid, status, **kw):
    r = {"kind": "maskbench", "engine": engine, "schema_id": sid, "subset": sid.split("-")[0],
         "status": status, "n_tests": 3}
    r.update(kw)
    return r


def test_maskbench_passing_counts():
    recs = [_mb("a", "S-1", "pass", compile_us=10, mask_us=[1, 2, 3]),
            _mb("a", "S-2", "valid_rejected", valid_rejected=1, compile_us=20, mask_us=[4]),
            _mb("a", "T-3", "invalid_accepted", invalid_accepted=2, compile_us=30, mask_us=[]),
            _mb("a", "T-4", "compile_error", compile_us=1),
            _mb("a", "T-5", "timeout", phase="compile"),
            _mb("a", "T-6", "crash", phase="masks"),
            _mb("b", "S-1", "pass", compile_us=5, mask_us=[9])]
    s = metrics.maskbench_summary(recs)
    a = s["a"]
    assert (a["schemas"], a["pass"], a["compile_error"], a["valid_rejected"], a["invalid_accepted"],
            a["timeout"], a["crash"]) == (6, 1, 1, 1, 1, 1, 1)
    assert a["invalid_accepted_instances"] == 2
    assert a["tokens"] == 4 and a["mask_us"]["max"] == 4
    assert a["compile_us"]["n"] == 3  # compile errors and timeouts have no compile time
    assert s["b"]["pass"] == 1
    # a record claiming "pass" with a rejected valid instance is not a pass
    assert metrics.schema_status(_mb("a", "S-9", "pass", valid_rejected=1)) == "valid_rejected"
    sub = metrics.per_subset(recs, lambda r: metrics.schema_status(r) == "pass")
    assert sub["S"]["a"] == pytest.approx(0.5) and sub["T"]["a"] == 0


def test_time_stats():
    st = metrics.time_stats(range(1, 101))
    assert st["n"] == 100 and st["max"] == 100 and st["mean"] == pytest.approx(50.5)
    assert 49 <= st["p50"] <= 51 and 98 <= st["p99"] <= 100
    assert metrics.time_stats([])["p50"] is None


def test_mask_allows():
    import numpy as np

    m = np.zeros(3, dtype=np.int32)
    m[1] = np.int32(-2**31)  # bit 31 of word 1 -> token 63
    m[0] = 1 << 5
    assert mask_allows(m, 63) and mask_allows(m, 5)
    assert not mask_allows(m, 4) and not mask_allows(m, 62) and not mask_allows(m, 10_000)


# ------------------------------------------------------------------------------------- loaders
def _maskbench_file(path: Path, schema, tests):
    path.write_text(json.dumps({"description": "x", "meta": {}, "schema": schema, "tests": tests}))


def test_maskbench_loader_and_selection(tmp_path):
    d = tmp_path / "maskbench"
    d.mkdir()
    for i in range(12):
        sub = ["Github_easy", "Github_hard", "Kubernetes"][i % 3]
        _maskbench_file(d / f"{sub}---o{i}.json", {"type": "integer"},
                        [{"description": "v", "valid": True, "data": i}, {"valid": False, "data": "x"}])
    extra = tmp_path / "maskbench_extra"
    extra.mkdir()
    _maskbench_file(extra / "BFCL_java_3.json", {"type": "string"}, [])
    cases = data.load(str(tmp_path))
    assert len(cases) == 12
    c = next(c for c in cases if c["id"] == "Kubernetes---o2")
    assert c["subset"] == "Kubernetes" and c["schema"] == {"type": "integer"}
    assert c["tests"][0] == {"data": 2, "valid": True, "description": "v"}
    assert c["tests"][1]["valid"] is False
    with_extra = data.load(str(tmp_path), include_extra=True)
    assert {c["subset"] for c in with_extra} >= {"BFCL_java"}
    # subsets: a family name selects every member
    assert len(data.select(cases, subsets=["Github"])) == 8
    assert len(data.select(cases, subsets=["kubernetes"])) == 4
    # deterministic sampling with a seed, independent of input order
    a = data.select(cases, limit=5, seed=3)
    b = data.select(list(reversed(cases)), limit=5, seed=3)
    assert [c["id"] for c in a] == [c["id"] for c in b] and len(a) == 5
    assert [c["id"] for c in data.select(cases, limit=5, seed=4)] != [c["id"] for c in a] or True
    assert len(data.select(cases, limit=100)) == 12
    # a single file works too
    one = data.load(str(d / "Github_easy---o0.json"))
    assert len(one) == 1 and one[0]["id"] == "Github_easy---o0"


def test_github_layout_loader(tmp_path):
    for sub, names in {"Github_easy": ["o1", "o2"], "Snowplow": ["s1"]}.items():
        (tmp_path / "data" / sub).mkdir(parents=True)
        for n in names:
            (tmp_path / "data" / sub / f"{n}.json").write_text(json.dumps({"type": "object", "title": n}))
    cases = data.load(str(tmp_path))
    assert [c["id"] for c in cases] == ["Github_easy---o1", "Github_easy---o2", "Snowplow---s1"]
    assert cases[2]["subset"] == "Snowplow" and cases[2]["schema"]["title"] == "s1"
    assert all(c["tests"] == [] for c in cases)


def test_parquet_loader(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pyarrow not installed: parquet layout not testable")
    import pyarrow.parquet as pq

    (tmp_path / "Github_easy").mkdir()
    t = pa.table({"json_schema": [json.dumps({"type": "string"}), json.dumps({"type": "number"})],
                  "unique_id": ["o1", "o2"]})
    pq.write_table(t, tmp_path / "Github_easy" / "train-00000.parquet")
    pq.write_table(t.slice(0, 1), tmp_path / "Github_easy" / "test-00000.parquet")
    cases = data.load(str(tmp_path))
    assert len(cases) == 3
    test = data.load(str(tmp_path), split="test")
    assert len(test) == 1 and test[0]["schema"] == {"type": "string"} and test[0]["subset"] == "Github_easy"


@pytest.mark.skipif(SUITE is None, reason="JSON Schema Test Suite not found")
def test_json_schema_test_suite_loader():
    cases = data.load(str(SUITE))
    assert len(cases) > 300
    ids = {c["id"] for c in cases}
    assert "enum#0" in ids and "additionalProperties#0" in ids
    c = next(c for c in cases if c["id"] == "enum#0")
    assert c["subset"] == "enum" and c["tests"] and all("valid" in t for t in c["tests"])
    assert any(t["valid"] for t in c["tests"]) and any(not t["valid"] for t in c["tests"])


def test_validate_rescore():
    schema = {"type": "object", "properties": {"d": {"type": "string", "format": "date"}}, "required": ["d"]}
    recs = [{"schema_id": "s", "output": '{"d": "2024-02-03"}'},
            {"schema_id": "s", "output": '{"d": "not a date"}'},   # format checked
            {"schema_id": "s", "output": '```json\n{"d": "2024-02-03"}\n```'},  # json.loads as is
            {"id": "zz", "text": "{}"}]
    res = rescore(recs, {"s": schema})
    assert [r["valid"] for r in res] == [True, False, False, False]
    assert "unknown schema" in res[3]["validation_error"]


# ----------------------------------------------------------------------------------- isolation
FAKE_ENGINES = textwrap.dedent('''
    import os, signal, time
    import numpy as np
    from jsonschemabench.engines.base import EngineAdapter, Grammar, CompileError

    class _All(Grammar):
        def __init__(self, n):
            self.mask = np.full(n, -1, dtype=np.int32)
            self.steps = 0
        def reset(self): self.steps = 0
        def fill_mask(self): pass
        def accept_token(self, t): self.steps += 1; return True
        def is_accepting(self): return True

    class FakeTokenizer:
        """Bytes as token ids: lets the worker run without importing transformers."""
        eos_token_id = None
        def __len__(self): return 256
        def encode(self, text, add_special_tokens=False): return list(text.encode())
        def decode(self, ids): return bytes(ids).decode(errors="replace")

    class FakeAdapter(EngineAdapter):
        name = "fake"
        def compile_json_schema(self, schema):
            what = schema.get("x-fake")
            if what == "hang":
                while True: time.sleep(1)
            if what == "exit":
                os._exit(3)
            if what == "segv":
                os.kill(os.getpid(), signal.SIGSEGV)
            if what == "refuse":
                raise CompileError("refused")
            if what == "oom":
                raise MemoryError
            return _All(self.n_words)
''')


def test_isolation_timeout_crash_and_resume(tmp_path):
    from jsonschemabench.maskbench import MaskbenchConfig, run_maskbench

    mod = tmp_path / "fake_engines.py"
    mod.write_text(FAKE_ENGINES)
    register("fake-test", f"{mod}:FakeAdapter")
    try:
        tests = [{"data": {"a": 1}, "valid": True, "description": ""},
                 {"data": {"a": "x"}, "valid": False, "description": ""}]
        cases = [{"id": f"S---{i}", "subset": "S", "schema": s, "tests": tests, "source": ""}
                 for i, s in enumerate([{"type": "object"}, {"x-fake": "hang"}, {"type": "object"},
                                        {"x-fake": "exit"}, {"x-fake": "segv"}, {"x-fake": "refuse"},
                                        {"x-fake": "oom"}, {"type": "object"}])]
        out = tmp_path / "r.jsonl"
        cfg = MaskbenchConfig(tokenizer=f"py:{mod}:FakeTokenizer", output=str(out), engines=["fake-test"],
                              compile_timeout=1.0, timeout=5.0, mem_limit_gb=8.0, progress=False)
        logs = []
        recs = run_maskbench(cases, cfg, log=logs.append)
        by = {r["schema_id"]: r for r in recs}
        assert len(by) == 8
        assert by["S---1"]["status"] == "timeout" and by["S---1"]["phase"] == "compile"
        assert by["S---3"]["status"] == "crash" and "code 3" in by["S---3"]["error"]
        assert by["S---4"]["status"] == "crash" and "SIGSEGV" in by["S---4"]["error"]
        assert by["S---5"]["status"] == "compile_error" and "refused" in by["S---5"]["error"]
        # out of memory: the worker is replaced, not left at its limit for the next schemas
        assert by["S---6"]["status"] == "crash" and "MemoryError" in by["S---6"]["error"]
        # the fake accepts everything: valid instances pass, invalid ones are accepted
        for sid in ("S---0", "S---2", "S---7"):  # the run went on after each failure
            assert by[sid]["status"] == "invalid_accepted"
            assert by[sid]["valid_ok"] == 1 and by[sid]["invalid_accepted"] == 1
            assert len(by[sid]["mask_us"]) > 0 and by[sid]["compile_us"] >= 0
        assert "maskbench done" in logs[-1]
        # resume: nothing is re-run, nothing duplicated
        n_lines = len(read_jsonl(str(out)))
        run_maskbench(cases, cfg, log=logs.append)
        assert len(read_jsonl(str(out))) == n_lines == 8
        assert any("resume: 8" in m for m in logs)
    finally:
        ENGINES.pop("fake-test", None)


def test_engines_side_by_side(tmp_path):
    from jsonschemabench.maskbench import MaskbenchConfig, run_maskbench

    mod = tmp_path / "fake_engines2.py"
    mod.write_text(FAKE_ENGINES)
    register("fake-a", f"{mod}:FakeAdapter")
    register("fake-b", f"{mod}:FakeAdapter")
    try:
        cases = [{"id": f"S---{i}", "subset": "S", "schema": {"type": "object"},
                  "tests": [{"data": {"i": i}, "valid": True, "description": ""}], "source": ""}
                 for i in range(4)]
        cfg = MaskbenchConfig(tokenizer=f"py:{mod}:FakeTokenizer", output=str(tmp_path / "r.jsonl"),
                              engines=["fake-a", "fake-b"], progress=False, jobs=2)
        recs = run_maskbench(cases, cfg, log=lambda m: None)
        assert sorted((r["engine"], r["schema_id"]) for r in recs) == sorted(
            (e, c["id"]) for e in ("fake-a", "fake-b") for c in cases)
        assert all(r["status"] == "pass" for r in recs)
    finally:
        ENGINES.pop("fake-a", None)
        ENGINES.pop("fake-b", None)


def test_report_writes_markdown_and_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from jsonschemabench.report import write_report

    recs = [_mb(e, f"{sub}-{i}", st, compile_us=100.0 * (i + 1), mask_us=[1.0 + i, 20.0, 300.0])
            for e in ("constrain", "llguidance") for sub in ("A", "B") for i, st in
            enumerate(["pass", "pass", "valid_rejected"])]
    recs += [_gen("constrain", True, i % 2 == 0, "A") | {"compile_us": 5.0, "status": "ok", "ttft_ms": 10.0,
                                                           "tpot_ms": 2.0, "output_tokens": 12}
             for i in range(4)]
    src = tmp_path / "r.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    path = write_report([str(src)], str(tmp_path / "rep"))
    md = Path(path).read_text()
    assert "## MaskBench" in md and "| **passing** | **4** | **4** |" in md
    assert "## Generation" in md and "declared coverage" in md
    for png in ("maskbench_coverage.png", "maskbench_mask_time_cdf.png", "maskbench_compile_time_cdf.png",
                "generate_coverage.png"):
        assert (tmp_path / "rep" / png).stat().st_size > 1000


def test_cli_list_and_report_errors(tmp_path, capsys):
    from jsonschemabench.cli import main

    assert main(["report", str(tmp_path / "missing.jsonl")]) == 2
    d = tmp_path / "mb"
    d.mkdir()
    _maskbench_file(d / "X---a.json", {"type": "null"}, [])
    assert main(["list", "--data", str(d)]) == 0
    out = capsys.readouterr().out
    assert "schemas: 1" in out and "xgrammar" in out


def test_maskbench_labels_follow_the_validator(tmp_path):
    """The benchmark defines validity as Draft202012Validator's verdict: a file label that
    disagrees (12345.0 is an integer in 2020-12, not in draft 4) is overridden and counted."""
    schema = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer"}
    tests = [{"data": 12345.0, "valid": False}, {"data": 1, "valid": True}, {"data": "x", "valid": False}]
    p = tmp_path / "Github_easy---o1.json"
    p.write_text(json.dumps({"schema": schema, "tests": tests}))
    case = data.load_maskbench_file(str(p))
    assert [t["valid"] for t in case["tests"]] == [True, True, False]
    assert case["relabelled"] == 1
