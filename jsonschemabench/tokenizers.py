"""Loading the tokenizer a benchmark run uses (token bytes come from ``constrain.Vocabulary``)."""

from __future__ import annotations


def load_tokenizer(path_or_name: str):
    """A Hugging Face fast tokenizer from a local directory (or any id transformers resolves).

    ``"py:module:Class"`` / ``"py:/path/file.py:Class"`` instantiates a tokenizer-like class
    instead (tests use it to run workers without importing transformers)."""
    if path_or_name.startswith("py:"):
        from .engines import load_class

        return load_class(path_or_name[3:])()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path_or_name)
