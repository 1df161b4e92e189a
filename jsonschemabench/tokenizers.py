"""Tokenizer helpers shared by the adapters: loading and each token id's exact bytes."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def load_tokenizer(path_or_name: str):
    """A Hugging Face fast tokenizer from a local directory (or any id transformers resolves).

    ``"py:module:Class"`` / ``"py:/path/file.py:Class"`` instantiates a tokenizer-like class
    instead (tests use it to run workers without importing transformers)."""
    if path_or_name.startswith("py:"):
        from .engines import load_class

        return load_class(path_or_name[3:])()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path_or_name)


@functools.lru_cache(maxsize=1)
def _gpt2_byte_decoder() -> dict[str, int]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def _decoder_kinds(tokenizer: Any) -> set[str]:
    try:
        dec = json.loads(tokenizer.backend_tokenizer.to_str()).get("decoder") or {}
    except Exception:
        return set()
    kinds = set()

    def walk(d):
        if isinstance(d, dict):
            if "type" in d:
                kinds.add(d["type"])
            for v in d.values():
                walk(v)
        elif isinstance(d, list):
            for v in d:
                walk(v)

    walk(dec)
    return kinds


def special_token_ids(tokenizer: Any) -> set[int]:
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    try:
        for tid, added in tokenizer.added_tokens_decoder.items():
            if getattr(added, "special", False):
                ids.add(int(tid))
    except Exception:
        pass
    return ids


def token_bytes(tokenizer: Any) -> list[bytes | None]:
    """Exact bytes of every token id (``None`` for special tokens, which never match text)."""
    size = len(tokenizer)
    specials = special_token_ids(tokenizer)
    added = {}
    try:
        added = {int(k): v.content for k, v in tokenizer.added_tokens_decoder.items()}
    except Exception:
        pass
    kinds = _decoder_kinds(tokenizer)
    byte_level = "ByteLevel" in kinds
    inv = tokenizer.convert_ids_to_tokens(list(range(size)))
    out: list[bytes | None] = [None] * size
    bdec = _gpt2_byte_decoder()
    for tid, piece in enumerate(inv):
        if tid in specials or piece is None:
            continue
        if tid in added:
            out[tid] = added[tid].encode("utf-8")
            continue
        if byte_level:
            try:
                out[tid] = bytes(bdec[c] for c in piece)
                continue
            except KeyError:
                pass
        m = _BYTE_FALLBACK.match(piece)
        if m:
            out[tid] = bytes([int(m.group(1), 16)])
        else:
            out[tid] = piece.replace("\u2581", " ").encode("utf-8")
    return out
