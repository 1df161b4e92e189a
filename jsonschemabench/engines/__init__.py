"""Engine registry. Each engine lives in its own module behind :class:`~.base.EngineAdapter`.

A registry entry is an import spec ``"package.module:Class"`` or ``"/path/to/file.py:Class"``
(workers are separate processes, so engines are named by where to import them from, never passed
as objects). Tests register fake engines with :func:`register`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from .base import CompileError, EngineAdapter, Grammar, mask_allows, mask_count  # noqa: F401

#: name -> (import spec, python module that must be importable for the engine to be available)
ENGINES: dict[str, tuple[str, str | None]] = {
    "constrain": ("jsonschemabench.engines.constrain_adapter:ConstrainAdapter", "constrain"),
    "xgrammar": ("jsonschemabench.engines.xgrammar_adapter:XGrammarAdapter", "xgrammar"),
    "llguidance": ("jsonschemabench.engines.llguidance_adapter:LLGuidanceAdapter", "llguidance"),
    "outlines-core": ("jsonschemabench.engines.outlines_adapter:OutlinesCoreAdapter", "outlines_core"),
}
ALIASES = {"ours": "constrain", "xgr": "xgrammar", "llg": "llguidance", "outlines": "outlines-core",
           "outlines_core": "outlines-core"}


def register(name: str, spec: str, requires: str | None = None) -> None:
    ENGINES[name] = (spec, requires)


def canonical(name: str) -> str:
    name = name.strip()
    return ALIASES.get(name, name)


def spec_of(name: str) -> str:
    name = canonical(name)
    if name not in ENGINES:
        raise KeyError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    return ENGINES[name][0]


def is_available(name: str) -> tuple[bool, str]:
    """Cheap check (no heavy import): is the engine's package importable?"""
    name = canonical(name)
    if name not in ENGINES:
        return False, "unknown engine"
    req = ENGINES[name][1]
    if req is None:
        return True, ""
    try:
        if importlib.util.find_spec(req) is None:
            return False, f"python package {req!r} is not installed"
    except Exception as e:  # pragma: no cover
        return False, str(e)
    return True, ""


def load_class(spec: str):
    mod_name, _, cls_name = spec.rpartition(":")
    if mod_name.endswith(".py") or os.sep in mod_name:
        key = "_jsb_engine_" + os.path.splitext(os.path.basename(mod_name))[0]
        if key in sys.modules:
            mod = sys.modules[key]
        else:
            s = importlib.util.spec_from_file_location(key, mod_name)
            mod = importlib.util.module_from_spec(s)
            sys.modules[key] = mod
            s.loader.exec_module(mod)
    else:
        mod = importlib.import_module(mod_name)
    return getattr(mod, cls_name)


def make_adapter(spec: str, tokenizer, vocab_size=None, eos_token_ids=None, options=None) -> EngineAdapter:
    cls = load_class(spec)
    adapter = cls(tokenizer, vocab_size=vocab_size, eos_token_ids=eos_token_ids, options=options)
    adapter.setup()
    return adapter
