"""Toy problems with exact answers, for tests and the demo: random token DFAs over multi-byte
tokens, random step instances, and an oracle denoiser (the exact conditionals of a known joint
distribution over short canvases).
"""

from __future__ import annotations

import itertools

import numpy as np

from .slots import OPEN, Slots
from .token_dfa import TableTokenDFA

__all__ = ["random_token_dfa", "random_slots", "random_joint", "OracleDenoiser"]

ALPHABET = b"abc"


def random_token_dfa(rng: np.random.Generator, *, max_states: int = 6, max_tokens: int = 4,
                     max_token_len: int = 3) -> tuple[TableTokenDFA, list[bytes | None]]:
    """A random byte DFA over ``a b c`` (dead transitions, and often states that cannot reach
    acceptance) read through random multi-byte tokens; the last token id is EOS.
    Returns ``(dfa, token_bytes)``."""
    n = int(rng.integers(3, max_states + 1))
    table = np.zeros((n, 256), dtype=np.int64)
    for q in range(1, n):
        for b in ALPHABET:
            table[q, b] = 0 if rng.random() < 0.25 else int(rng.integers(1, n))
    accepting = rng.random(n) < 0.35
    accepting[0] = False
    k = int(rng.integers(2, max_tokens + 1))
    tokens: list[bytes | None] = []
    while len(tokens) < k:
        length = int(rng.integers(1, max_token_len + 1))
        tok = bytes(ALPHABET[int(i)] for i in rng.integers(0, len(ALPHABET), size=length))
        if tok not in tokens:
            tokens.append(tok)
    tokens.append(None)  # EOS
    return TableTokenDFA.from_byte_dfa(table, accepting, 1, tokens, eos_ids=[k]), tokens


def random_slots(rng: np.random.Generator, width: int, length: int, *, alpha: float = 0.7,
                 p_committed: float = 0.25, p_masked: float = 0.25, p_keep: float = 0.3) -> Slots:
    """Random step instance over ``width`` tokens: each position committed (a random token),
    masked, or a candidate with Dirichlet(``alpha``) weights; a candidate may also stay masked
    (DINGO's ⊥ option, with probability ``p_keep``), its weight then drawn with the tokens'."""
    tokens = np.full(length, OPEN, dtype=np.int64)
    cands, keep = {}, {}
    for i in range(length):
        u = rng.random()
        if u < p_committed:
            tokens[i] = int(rng.integers(width))
        elif u < p_committed + p_masked:
            continue
        elif rng.random() < p_keep:
            p = rng.dirichlet(np.full(width + 1, alpha))
            with np.errstate(divide="ignore"):
                lp = np.log(p)
            cands[i] = (np.arange(width), lp[:width])
            keep[i] = float(lp[width])
        else:
            with np.errstate(divide="ignore"):
                cands[i] = (np.arange(width), np.log(rng.dirichlet(np.full(width, alpha))))
    return Slots(tokens, cands, keep)


def random_joint(width: int, length: int, rng: np.random.Generator, *, alpha: float = 0.5) -> np.ndarray:
    """A Dirichlet(``alpha``) joint distribution over ``width**length`` canvases, shaped
    ``(width,) * length``."""
    return rng.dirichlet(np.full(width ** length, alpha)).reshape((width,) * length)


class OracleDenoiser:
    """The exact denoiser of a joint distribution ``joint`` over canvases of ``n`` tokens from
    ``width`` ids: called on ``(B, n)`` ids (``mask_id = width`` at masked positions) it returns
    ``(B, n, width + 1)`` LLaDA-convention logits, namely ``log P(x_i = v | committed positions)``
    (``-inf`` for the mask column and impossible tokens).  A plain callable: wrap it in a
    :class:`~constrain.diffusion.adapters.DiffusionAdapter`.
    """

    def __init__(self, joint: np.ndarray):
        self.joint = np.asarray(joint, dtype=np.float64)
        self.width = self.joint.shape[0]
        self.length = self.joint.ndim
        self.mask_id = self.width
        self._all = np.array(list(itertools.product(range(self.width), repeat=self.length)), dtype=np.int64)
        self._p = self.joint.reshape(-1)
        onehot = self._all[:, :, None] == np.arange(self.width)[None, None, :]
        self._onehot = onehot.reshape(len(self._all), -1).astype(np.float64)

    def __call__(self, ids) -> np.ndarray:
        ids = np.asarray(ids.cpu() if hasattr(ids, "cpu") else ids, dtype=np.int64)
        b, n = ids.shape
        consistent = ((self._all[None] == ids[:, None]) | (ids[:, None] == self.mask_id)).all(axis=2)
        marg = (consistent * self._p[None]) @ self._onehot  # (B, n * width)
        with np.errstate(divide="ignore"):
            logits = np.log(marg.reshape(b, n, self.width))
        return np.concatenate([logits, np.full((b, n, 1), -np.inf)], axis=2)
