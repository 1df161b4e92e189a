"""The tables shipped in constrain/data: current, equal to what a fresh process computes, and
ignored wherever they might not apply."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from constrain import builtin_tables
from constrain import charset as cs

REPO = Path(__file__).resolve().parent.parent


def test_the_shipped_tables_are_what_a_fresh_process_computes():
    shipped = builtin_tables.shipped_fingerprint()
    assert shipped is not None, f"{builtin_tables.FINGERPRINT} is missing: run python scripts/builtin_tables.py"
    if shipped[1] != builtin_tables.runtime():
        pytest.skip(f"the shipped tables were made with {shipped[1]}; this is {builtin_tables.runtime()}, "
                    "which computes its own")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "builtin_tables.py"), "--check"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr


def test_the_shipped_tables_apply_to_this_checkout():
    # Without them every fresh process pays ~100 ms again; the check above says why they differ.
    shipped = builtin_tables.shipped_fingerprint()
    if shipped is None or shipped[1] != builtin_tables.runtime():
        pytest.skip("made for another Python or Unicode version")
    assert builtin_tables.charset("word") is not None
    assert builtin_tables.lowered(("utf8", cs.word(), False)) is not None


def test_tables_of_another_fingerprint_are_ignored(tmp_path, monkeypatch):
    stale = tmp_path / "builtin_tables.fingerprint"
    stale.write_text("0" * 64 + "\n" + builtin_tables.runtime() + "\n")
    monkeypatch.setattr(builtin_tables, "FINGERPRINT", stale)
    monkeypatch.setattr(builtin_tables, "_tables", None)
    assert builtin_tables.charset("word") is None
    assert builtin_tables.lowered(("utf8", cs.word(), False)) is None
    # and the class is computed instead, the same as ever
    cs._predicate_set.cache_clear()
    try:
        assert cs.word() == cs._predicate_set("word")
        assert cs.contains(cs.word(), ord("_")) and not cs.contains(cs.word(), ord("-"))
    finally:
        cs._predicate_set.cache_clear()


def test_missing_tables_are_no_error(tmp_path, monkeypatch):
    monkeypatch.setattr(builtin_tables, "FINGERPRINT", tmp_path / "absent")
    monkeypatch.setattr(builtin_tables, "_tables", None)
    assert builtin_tables.charset("decimal") is None
