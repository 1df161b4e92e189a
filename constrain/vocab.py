"""Token id -> exact byte string, for any Hugging Face (Rust ``tokenizers``) tokenizer.

The bytes of a token are what it contributes to the decoded text when it sits in the *middle* of
a sequence: start-of-text effects (SentencePiece's dummy-prefix strip, ``Strip`` after ``Fuse``,
``Metaspace``'s first-token rule) are ignored, and partial UTF-8 sequences are kept as raw bytes
instead of becoming U+FFFD. The kind of tokenizer is read from the tokenizer itself — its decoder
pipeline and model — never guessed from a model name:

- byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM2, Mistral tekken as converted to
  ``tokenizer.json``): the ``ByteLevel`` decoder maps each character back through the GPT-2
  byte-to-unicode table; a token with a character outside the table is taken as its UTF-8, as
  the Rust decoder does.
- SentencePiece-style (Llama-2, Mistral v1, Gemma): ``Replace("▁", " ")`` / ``Metaspace`` turn
  ``▁`` into a space, ``ByteFallback`` turns ``<0xNN>`` into the byte ``NN``.
- added tokens: ``special=True`` ones (and the model's unk token and the EOS ids) have no bytes
  (``None``); non-special ones contribute their content passed through the same decoder, which is
  what decoding produces.

Decoders that cannot give exact bytes (none, ``WordPiece``, ``BPEDecoder``, ``CTC``) raise
:class:`~constrain.errors.VocabularyError`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
import weakref
from array import array
from collections import OrderedDict
from typing import Any, Iterable, Sequence

from constrain.errors import VocabularyError

__all__ = ["Vocabulary", "clear_cache"]


class Vocabulary:
    """Exact byte string of every token id, plus the ids that carry no text.

    ``token_bytes[i] is None`` exactly when ``i`` is in ``special_token_ids`` (for
    ``i < len(token_bytes)``); EOS ids are always special. Ids in ``[len(token_bytes), size)`` are
    logits padding and never allowed.
    """

    __slots__ = (
        "token_bytes",
        "size",
        "eos_token_ids",
        "special_token_ids",
        "name",
        "_fingerprint",
        "__weakref__",
    )

    def __init__(
        self,
        token_bytes: Sequence[bytes | None],
        *,
        size: int | None = None,
        eos_token_ids: Iterable[int] = (),
        special_token_ids: Iterable[int] = (),
        name: str = "",
    ):
        tb = list(token_bytes)
        n = len(tb)
        if size is None:
            size = n
        size = int(size)
        if size < n:
            raise VocabularyError(f"size {size} is smaller than the number of tokens {n}")
        eos = frozenset(int(i) for i in eos_token_ids)
        special = set(int(i) for i in special_token_ids) | eos
        for i in special:
            if not 0 <= i < size:
                raise VocabularyError(f"special/EOS token id {i} outside [0, {size})")
            if i < n:
                tb[i] = None
        for i, b in enumerate(tb):
            if b is None:
                special.add(i)
            elif type(b) is not bytes:
                if isinstance(b, (bytearray, memoryview)):
                    tb[i] = bytes(b)
                else:
                    raise VocabularyError(f"token {i}: expected bytes or None, got {type(b).__name__}")
        self.token_bytes: list[bytes | None] = tb
        self.size: int = size
        self.eos_token_ids: frozenset[int] = eos
        self.special_token_ids: frozenset[int] = frozenset(special)
        self.name: str = str(name)
        self._fingerprint: str | None = None

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return (
            f"Vocabulary(name={self.name!r}, tokens={len(self.token_bytes)}, size={self.size}, "
            f"eos={sorted(self.eos_token_ids)}, special={len(self.special_token_ids)})"
        )

    @property
    def fingerprint(self) -> str:
        """Stable hex digest of (token_bytes, size, eos ids); use it to key caches."""
        fp = self._fingerprint
        if fp is None:
            h = hashlib.sha256(b"constrain.vocab/1\0")
            h.update(json.dumps([self.size, len(self.token_bytes), sorted(self.eos_token_ids)]).encode())
            lengths = array("q", [-1 if b is None else len(b) for b in self.token_bytes])
            h.update(lengths.tobytes())
            h.update(b"".join(b for b in self.token_bytes if b is not None))
            fp = self._fingerprint = h.hexdigest()
        return fp

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Concatenated bytes of ``ids``. Raises ``ValueError`` for an id without bytes
        (special, EOS, padding or out of range)."""
        tb = self.token_bytes
        out = []
        for i in ids:
            i = int(i)
            b = tb[i] if 0 <= i < len(tb) else None
            if b is None:
                if 0 <= i < self.size:
                    raise ValueError(f"token id {i} is special/padding and has no bytes")
                raise ValueError(f"token id {i} outside [0, {self.size})")
            out.append(b)
        return b"".join(out)

    # ------------------------------------------------------------ construction
    @classmethod
    def from_tokenizer(
        cls,
        tokenizer: Any,
        *,
        logits_width: int | None = None,
        generation_config: Any = None,
    ) -> "Vocabulary":
        """Build (or fetch from cache) the vocabulary of a Hugging Face tokenizer.

        ``tokenizer``: a ``transformers`` fast tokenizer (anything with ``backend_tokenizer``) or
        a raw ``tokenizers.Tokenizer``. ``logits_width``: the model's logits width when it differs
        from ``len(tokenizer)``; wider means padding ids, narrower drops trailing ids (allowed
        only when all of them are special). ``generation_config``: a ``GenerationConfig`` (or
        dict) whose ``eos_token_id`` (int or list) is added to the tokenizer's EOS.

        Cached per tokenizer object, and per (class, name_or_path, length, logits width, EOS ids)
        so that loading the same tokenizer again is free.
        """
        backend = _backend_of(tokenizer)
        length = _tokenizer_length(tokenizer, backend)
        eos = _eos_ids(tokenizer, generation_config)
        width = None if logits_width is None else int(logits_width)
        key = (length, width, eos)
        name = str(getattr(tokenizer, "name_or_path", "") or "")
        name_key = (type(tokenizer).__qualname__, name) + key if name else None

        with _CACHE_LOCK:
            per_obj = _object_cache_get(tokenizer)
            if per_obj is not None and key in per_obj:
                return per_obj[key]
            if name_key is not None and name_key in _NAME_CACHE:
                vocab = _NAME_CACHE[name_key]
                _NAME_CACHE.move_to_end(name_key)
                _object_cache_put(tokenizer, key, vocab)
                return vocab

        vocab = _build(backend, length=length, logits_width=width, eos=eos, name=name)

        with _CACHE_LOCK:
            _object_cache_put(tokenizer, key, vocab)
            if name_key is not None:
                _NAME_CACHE[name_key] = vocab
                _NAME_CACHE.move_to_end(name_key)
                while len(_NAME_CACHE) > _NAME_CACHE_MAX:
                    _NAME_CACHE.popitem(last=False)
        return vocab


# ---------------------------------------------------------------------- caches
_CACHE_LOCK = threading.RLock()
_OBJECT_CACHE: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
_NAME_CACHE: "OrderedDict[tuple, Vocabulary]" = OrderedDict()
_NAME_CACHE_MAX = 16


def _object_cache_get(tokenizer: Any) -> dict | None:
    try:
        return _OBJECT_CACHE.get(tokenizer)
    except TypeError:  # not weak-referenceable / not hashable
        return None


def _object_cache_put(tokenizer: Any, key: tuple, vocab: Vocabulary) -> None:
    try:
        _OBJECT_CACHE.setdefault(tokenizer, {})[key] = vocab
    except TypeError:
        pass


def clear_cache() -> None:
    """Forget every cached vocabulary (tests, or after mutating a tokenizer in place)."""
    with _CACHE_LOCK:
        _OBJECT_CACHE.clear()
        _NAME_CACHE.clear()


# -------------------------------------------------------------- tokenizer info
def _backend_of(tokenizer: Any) -> Any:
    """The Rust ``tokenizers.Tokenizer`` behind ``tokenizer``."""
    for cand in (tokenizer, getattr(tokenizer, "backend_tokenizer", None), getattr(tokenizer, "_tokenizer", None)):
        if cand is not None and hasattr(cand, "get_vocab") and hasattr(cand, "get_added_tokens_decoder") and hasattr(cand, "model"):
            return cand
    raise VocabularyError(
        f"cannot read the vocabulary of {type(tokenizer).__name__}: a fast tokenizer "
        "(Rust `tokenizers` backend, i.e. with `backend_tokenizer`) is required"
    )


def _tokenizer_length(tokenizer: Any, backend: Any) -> int:
    n = 0
    try:
        n = len(tokenizer)
    except TypeError:
        pass
    try:
        n = max(n, backend.get_vocab_size(with_added_tokens=True))
    except Exception:  # pragma: no cover - very old tokenizers
        pass
    return int(n)


def _as_id_list(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return [int(v) for v in value if v is not None]
    return [int(value)]


def _eos_ids(tokenizer: Any, generation_config: Any) -> frozenset[int]:
    ids = set(_as_id_list(getattr(tokenizer, "eos_token_id", None)))
    if generation_config is not None:
        if isinstance(generation_config, dict):
            ids.update(_as_id_list(generation_config.get("eos_token_id")))
        else:
            ids.update(_as_id_list(getattr(generation_config, "eos_token_id", None)))
    return frozenset(ids)


# ------------------------------------------------------------- byte-level map
@functools.lru_cache(maxsize=1)
def _byte_level_table() -> dict[int, int]:
    """``str.translate`` table: GPT-2 byte-level character -> its byte (as a code point < 256).

    Code points below 256 that are *not* byte-level characters map to U+0100, so that the
    following ``encode("latin-1")`` fails and the token falls back to its UTF-8, exactly like
    the Rust ``ByteLevel`` decoder does for a token with an unknown character.
    """
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = {o: 0x100 for o in range(256)}
    for b, c in zip(bs, cs):
        table[c] = b
    return table


def _byte_level(s: str, table: dict[int, int]) -> bytes:
    try:
        return s.translate(table).encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8")


_BYTE_FALLBACK_RE = re.compile(r"<0x([0-9A-Fa-f]{2})>\Z")

# ---------------------------------------------------------------- decoders
# A decoder pipeline is flattened into steps: ("replace", compiled_or_str, content),
# ("byte_fallback",), ("byte_level",), ("strip", content, start, stop). Fuse and start-of-text
# rules only matter at the very beginning/end of a text and are dropped.


def _decoder_steps(dec: dict | None) -> list[tuple]:
    if dec is None:
        raise VocabularyError(
            "tokenizer has no decoder (tokens would be joined with spaces): exact token bytes are unknown"
        )
    steps: list[tuple] = []
    fused = False  # a Fuse/ByteLevel has already merged all tokens into one string

    def walk(d: dict) -> None:
        nonlocal fused
        kind = d.get("type")
        if kind == "Sequence":
            for sub in d.get("decoders", []):
                walk(sub)
            return
        if any(s[0] == "byte_level" for s in steps) and kind not in ("Fuse", "Strip"):
            raise VocabularyError(f"unsupported decoder: {kind!r} after ByteLevel")
        if kind == "ByteLevel":
            steps.append(("byte_level",))
            fused = True
        elif kind == "ByteFallback":
            steps.append(("byte_fallback",))
        elif kind == "Fuse":
            fused = True
        elif kind == "Replace":
            pat = d.get("pattern", {})
            content = d.get("content", "")
            if "String" in pat:
                steps.append(("replace", pat["String"], content))
            elif "Regex" in pat:
                try:
                    rx = re.compile(pat["Regex"])
                except re.error as e:
                    raise VocabularyError(f"unsupported Replace decoder regex {pat['Regex']!r}: {e}") from e
                steps.append(("replace", rx, content))
            else:
                raise VocabularyError(f"unsupported Replace decoder pattern {pat!r}")
        elif kind == "Metaspace":
            # The first-token space strip (prepend_scheme) only happens at the start of a text.
            steps.append(("replace", d.get("replacement", "\u2581"), " "))
        elif kind == "Strip":
            if not fused:  # per-token strip; after Fuse it only touches the text's ends
                steps.append(("strip", d.get("content", " "), int(d.get("start", 0)), int(d.get("stop", 0))))
        else:
            raise VocabularyError(
                f"unsupported tokenizer decoder {kind!r}: exact token bytes cannot be derived "
                "(supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace)"
            )

    walk(dec)
    return steps


def _strip(s: str, content: str, start: int, stop: int) -> str:
    a = 0
    while a < start and a < len(s) and s[a] == content:
        a += 1
    b = len(s)
    k = 0
    while k < stop and b > a and s[b - 1] == content:
        b -= 1
        k += 1
    return s[a:b]


def _decode_tokens(strings: list[str | None], steps: list[tuple]) -> list[bytes | None]:
    """Apply the decoder steps to each token string independently (mid-text semantics)."""
    vals: list[Any] = list(strings)
    for step in steps:
        op = step[0]
        if op == "replace":
            pat, content = step[1], step[2]
            if isinstance(pat, str):
                if not pat:
                    continue
                vals = [v.replace(pat, content) if type(v) is str and pat in v else v for v in vals]
            else:
                vals = [pat.sub(content.replace("\\", "\\\\"), v) if type(v) is str else v for v in vals]
        elif op == "byte_fallback":
            m = _BYTE_FALLBACK_RE.match
            for i, v in enumerate(vals):
                if type(v) is str and len(v) == 6 and v.startswith("<0x"):
                    mm = m(v)
                    if mm:
                        vals[i] = bytes((int(mm.group(1), 16),))
        elif op == "strip":
            _, content, start, stop = step
            vals = [_strip(v, content, start, stop) if type(v) is str else v for v in vals]
        elif op == "byte_level":
            table = _byte_level_table()
            vals = [_byte_level(v, table) if type(v) is str else v for v in vals]
        else:  # pragma: no cover
            raise AssertionError(op)
    return [v.encode("utf-8") if type(v) is str else v for v in vals]


# ------------------------------------------------------------------- building
def _model_info(backend: Any) -> tuple[str, bool, str | None]:
    """(model type, byte_fallback, unk token string) of the backend's model."""
    model = backend.model
    kind = type(model).__name__
    if kind == "BPE":
        return kind, bool(getattr(model, "byte_fallback", False)), getattr(model, "unk_token", None)
    try:
        state = json.loads(model.__getstate__())
    except Exception as e:  # pragma: no cover
        raise VocabularyError(f"cannot read tokenizer model of type {kind}: {e}") from e
    kind = state.get("type", kind)
    unk = state.get("unk_token")
    if kind == "Unigram":
        unk_id = state.get("unk_id")
        vocab = state.get("vocab") or []
        unk = vocab[unk_id][0] if unk_id is not None and 0 <= unk_id < len(vocab) else None
    return kind, bool(state.get("byte_fallback", False)), unk


def _build(backend: Any, *, length: int, logits_width: int | None, eos: frozenset[int], name: str) -> Vocabulary:
    kind, byte_fallback, unk = _model_info(backend)
    if kind not in ("BPE", "Unigram", "WordLevel", "WordPiece"):
        raise VocabularyError(f"unsupported tokenizer model type {kind!r}")
    dec_obj = backend.decoder
    dec_json = json.loads(dec_obj.__getstate__()) if dec_obj is not None else None
    steps = _decoder_steps(dec_json)

    vocab = backend.get_vocab(with_added_tokens=False)
    added = backend.get_added_tokens_decoder()
    n = max(length, max(vocab.values(), default=-1) + 1, max(added, default=-1) + 1)

    strings: list[str | None] = [None] * n
    for s, i in vocab.items():
        strings[i] = s
    special: set[int] = set()
    if unk is not None and unk in vocab:
        special.add(vocab[unk])

    vocab_steps = steps
    if byte_fallback and not any(s[0] == "byte_fallback" for s in steps):
        # The model emits <0xNN> pieces for raw bytes even if the decoder forgot them.
        vocab_steps = [("byte_fallback",)] + steps
    token_bytes = _decode_tokens(strings, vocab_steps)

    # Added tokens override model tokens: special ones carry no text; non-special ones decode
    # their content through the same decoder (that is what `decode` yields for them).
    added_ids = sorted(added)
    plain = [i for i in added_ids if not added[i].special]
    for i in added_ids:
        if added[i].special:
            special.add(i)
    for i, b in zip(plain, _decode_tokens([added[i].content for i in plain], steps)):
        token_bytes[i] = b

    # A token that decodes to nothing makes no progress: never allow it.
    for i, b in enumerate(token_bytes):
        if b is not None and not b:
            special.add(i)
    special.update(i for i in eos if i < n)

    size = n
    if logits_width is not None:
        if logits_width < n:
            dropped = [i for i in range(logits_width, n) if token_bytes[i] is not None and i not in special]
            if dropped:
                raise VocabularyError(
                    f"logits width {logits_width} is narrower than the tokenizer ({n} ids) and "
                    f"drops text token(s) {dropped[:5]}"
                )
            token_bytes = token_bytes[:logits_width]
            special = {i for i in special if i < logits_width}
            eos = frozenset(i for i in eos if i < logits_width)
        size = logits_width
    eos = frozenset(i for i in eos if 0 <= i < size)
    return Vocabulary(token_bytes, size=size, eos_token_ids=eos, special_token_ids=special, name=name)
