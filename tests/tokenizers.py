"""Where the real Hugging Face tokenizers used by the tests live, and a cached loader.

Looked up in ``$CONSTRAIN_TOKENIZERS_DIR`` when set, else ``<repo>/../shared/tokenizers``, else
``/work/shared/tokenizers``. A missing tokenizer makes the calling test skip, saying where it
looked.

Import it as ``from tests.tokenizers import load_tokenizer`` (``tests`` is a package so that this
module does not shadow the real ``tokenizers`` library).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

#: The tokenizer folders the test suite knows about.
TOKENIZER_NAMES = ("smollm2", "gpt2", "llama3.2", "mistral-tekken", "qwen2.5", "gemma3")

ENV_VAR = "CONSTRAIN_TOKENIZERS_DIR"


def _candidate_dirs() -> list[Path]:
    env = os.environ.get(ENV_VAR)
    if env:
        return [Path(env)]
    repo = Path(__file__).resolve().parents[1]
    out = [repo.parent / "shared" / "tokenizers", Path("/work/shared/tokenizers")]
    return list(dict.fromkeys(out))


def tokenizer_path(name: str) -> Path:
    """Folder of tokenizer ``name`` (holding ``tokenizer.json``); skips the test if absent."""
    dirs = _candidate_dirs()
    for d in dirs:
        p = d / name
        if (p / "tokenizer.json").is_file():
            return p
    where = ", ".join(str(d / name) for d in dirs)
    pytest.skip(f"tokenizer {name!r} not found (looked in {where}; set ${ENV_VAR} to the folder holding it)")


@functools.lru_cache(maxsize=None)
def _load(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def load_tokenizer(name: str):
    """``AutoTokenizer.from_pretrained`` of tokenizer ``name``, loaded once per session.

    The object is shared between tests: do not mutate it (load your own copy with
    ``AutoTokenizer.from_pretrained(tokenizer_path(name))`` for that).
    """
    return _load(str(tokenizer_path(name)))
