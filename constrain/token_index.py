"""The hot loop: which tokens keep a DFA state alive, computed for the whole vocabulary at once.

The vocabulary's byte strings form a trie, laid out level by level in numpy arrays: level ``d``
holds the distinct ``d``-byte prefixes in sorted order, so the children of any node are one
contiguous run of the next level. A mask is a breadth-first walk of that trie in lock step with the
DFA: each level is a single gather ``table[state, byte]`` over the surviving nodes, and a dead node
prunes its whole subtree. No Python loop runs over tokens.
"""

from __future__ import annotations

import threading

import numpy as np

from .automaton import DEAD, LazyDFA
from .vocab import Vocabulary


class VocabTrie:
    """Level-ordered trie of a vocabulary's token byte strings (of the ids given, or of all)."""

    def __init__(self, vocab: Vocabulary, ids: list[int] | None = None):
        self.vocab_size = vocab.size
        self.num_words = (vocab.size + 31) // 32
        self._eos_masks: dict[tuple, np.ndarray] = {}
        if ids is None:
            ids = [i for i, b in enumerate(vocab.token_bytes) if b]  # special (None) and empty never match
        tokens = [vocab.token_bytes[i] for i in ids]
        order = sorted(range(len(tokens)), key=tokens.__getitem__)
        tokens = [tokens[i] for i in order]
        ids_sorted = np.asarray(ids, dtype=np.int64)[np.asarray(order, dtype=np.int64)] if ids else np.zeros(0, np.int64)
        lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
        self.max_len = int(lengths.max()) if len(tokens) else 0
        n = len(tokens)
        width = self.max_len
        flat = np.frombuffer(b"".join(tokens), dtype=np.uint8)
        starts = np.zeros(n, dtype=np.int64)
        if n:
            starts[1:] = np.cumsum(lengths)[:-1]
        # Padded matrix of bytes; positions past a token's end are 0 and masked by `lengths`.
        mat = np.zeros((n, width), dtype=np.uint8)
        col = np.arange(width)
        valid = col[None, :] < lengths[:, None]
        mat[valid] = flat[(starts[:, None] + col[None, :])[valid]]
        # Longest common prefix with the previous (sorted) token.
        lcp = np.zeros(n, dtype=np.int64)
        if n > 1:
            diff = (mat[1:] != mat[:-1]) | ~valid[1:] | ~valid[:-1]
            first = np.where(diff.any(axis=1), diff.argmax(axis=1), width)
            lcp[1:] = np.minimum(first, np.minimum(lengths[1:], lengths[:-1]))
        self.level_bytes: list[np.ndarray] = []
        self.child_lo: list[np.ndarray] = []
        self.child_hi: list[np.ndarray] = []
        self.parent: list[np.ndarray] = []  # per level: index of each node's parent in the level above
        self.end_node: list[np.ndarray] = []  # per level: node index of each token ending there
        self.end_token: list[np.ndarray] = []
        prev_node_of_token = None
        for d in range(1, width + 1):
            has = lengths >= d
            rows = np.flatnonzero(has)
            new = lcp[rows] < d  # a prefix of length d that differs from the previous token's
            node_of_row = np.cumsum(new) - 1
            self.level_bytes.append(mat[rows[new], d - 1].astype(np.int32))
            node_of_token = np.full(n, -1, dtype=np.int64)
            node_of_token[rows] = node_of_row
            if prev_node_of_token is None:
                self.parent.append(np.zeros(int(new.sum()), dtype=np.int32))
            else:
                parents = prev_node_of_token[rows[new]]
                self.parent.append(parents.astype(np.int32))
                n_prev = len(self.level_bytes[-2])
                self.child_lo.append(np.searchsorted(parents, np.arange(n_prev), side="left").astype(np.int64))
                self.child_hi.append(np.searchsorted(parents, np.arange(n_prev), side="right").astype(np.int64))
            ends = rows[lengths[rows] == d]
            self.end_node.append(node_of_token[ends].astype(np.int32))
            self.end_token.append(ids_sorted[ends])
            prev_node_of_token = node_of_token
        n_last = len(self.level_bytes[-1]) if self.level_bytes else 0
        self.child_lo.append(np.zeros(n_last, dtype=np.int64))
        self.child_hi.append(np.zeros(n_last, dtype=np.int64))
        self.num_nodes = sum(len(b) for b in self.level_bytes)

    def allowed_tokens(self, dfa: LazyDFA, sid: int) -> np.ndarray:
        """Token ids whose bytes, read from state ``sid``, leave the DFA in a live state.

        Each level is processed densely (every node: one gather of the parent's state, one of the
        transition) once many nodes survive, and sparsely (expanding only surviving nodes'
        children) while few do, so that states where almost every token dies stay cheap.
        """
        if not self.level_bytes or sid == DEAD:
            return np.zeros(0, dtype=np.int64)
        row = dfa.ensure_row(sid)
        states = row[self.level_bytes[0]]  # dense: one state per node of the level
        nodes = None  # sparse: indices of surviving nodes (None while dense)
        out = []
        for d in range(len(self.level_bytes)):
            if nodes is None:
                alive = states != DEAD
                n_alive = int(np.count_nonzero(alive))
                if n_alive == 0:
                    break
                ends = self.end_node[d]
                if len(ends):
                    out.append(self.end_token[d][alive[ends]])
                if d + 1 == len(self.level_bytes):
                    break
                if n_alive * 8 < len(states):  # switch to sparse
                    nodes = np.flatnonzero(alive)
                    states = states[nodes]
                    nodes, states = self.expand(dfa, d, nodes, states)
                else:
                    parent_states = states[self.parent[d + 1]]
                    states = self.step_states(dfa, parent_states, self.level_bytes[d + 1])
            else:
                keep = states != DEAD
                nodes, states = nodes[keep], states[keep]
                if len(nodes) == 0:
                    break
                ends = self.end_node[d]
                if len(ends):
                    alive = np.zeros(len(self.level_bytes[d]), dtype=bool)
                    alive[nodes] = True
                    out.append(self.end_token[d][alive[ends]])
                if d + 1 == len(self.level_bytes):
                    break
                nodes, states = self.expand(dfa, d, nodes, states)
                if len(nodes) == 0:
                    break
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    @staticmethod
    def step_states(dfa: LazyDFA, parent_states: np.ndarray, level_bytes: np.ndarray) -> np.ndarray:
        """``dfa``'s successors of ``parent_states`` on ``level_bytes`` (rows filled on demand)."""
        if not dfa.row_known[parent_states].all():
            dfa.ensure_rows(parent_states)
        return dfa.table.reshape(-1)[parent_states * 256 + level_bytes]

    def expand(self, dfa: LazyDFA, d: int, nodes: np.ndarray, states: np.ndarray):
        """The children (at level ``d + 1``) of level-``d`` ``nodes`` in ``states``, and their states."""
        lo, hi = self.child_lo[d][nodes], self.child_hi[d][nodes]
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return nodes[:0], states[:0]
        offsets = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        children = np.arange(total, dtype=np.int64) + offsets
        parent_states = np.repeat(states, counts)
        return children, self.step_states(dfa, parent_states, self.level_bytes[d + 1][children])

    def eos_only_mask(self, eos_ids) -> np.ndarray:
        """The packed mask allowing only ``eos_ids``: read-only and shared, as every grammar over
        this vocabulary has the same one (packing it took ~20 µs of each compile at 128k tokens)."""
        key = tuple(sorted(eos_ids))
        got = self._eos_masks.get(key)
        if got is None:
            got = self.pack(np.zeros(0, dtype=np.int64), key)
            got.flags.writeable = False
            self._eos_masks[key] = got
        return got

    def pack(self, token_ids: np.ndarray, extra_ids=()) -> np.ndarray:
        """Pack token ids into an int32 bitmask of ``ceil(V/32)`` words (bit i of word i//32)."""
        bits = np.zeros(self.num_words * 32, dtype=bool)
        bits[token_ids] = True
        for t in extra_ids:
            bits[t] = True
        return np.packbits(bits, bitorder="little").view("<i4").copy()


# Bytes a plain token (see StringBodyIndex) can start with: not '"', '\\', controls, or UTF-8
# continuation bytes. A string body followed by something starting otherwise is safe to shortcut.
PLAIN_START_BYTES = sum(1 << b for b in range(0x20, 0x100) if b not in (0x22, 0x5C) and not 0x80 <= b <= 0xBF)


class StringBodyIndex:
    """Tokens split for JSON string bodies, the commonest state of JSON generation.

    A *plain* token is complete UTF-8 without ``"``, ``\\`` or control characters: inside a string
    body ``c{lo,hi}`` it is allowed exactly when its character count fits in ``hi``. Only the other
    tokens (quotes, escapes, partial UTF-8) need the trie walk, over a much smaller trie.
    """

    def __init__(self, vocab: Vocabulary):
        plain, counts, other = [], [], []
        for i, b in enumerate(vocab.token_bytes):
            if not b:
                continue
            try:
                text = b.decode("utf-8")
            except UnicodeDecodeError:
                other.append(i)
                continue
            if '"' in text or "\\" in text or any(ord(c) < 0x20 for c in text):
                other.append(i)
            else:
                plain.append(i)
                counts.append(len(text))
        order = np.argsort(np.asarray(counts, dtype=np.int64), kind="stable")
        self.plain_ids = np.asarray(plain, dtype=np.int64)[order]
        self.plain_chars = np.asarray(counts, dtype=np.int64)[order]
        self.other = VocabTrie(vocab, other)

    def plain_allowed(self, max_chars: int | None) -> np.ndarray:
        if max_chars is None:
            return self.plain_ids
        return self.plain_ids[: int(np.searchsorted(self.plain_chars, max_chars, side="right"))]


class TokenEnds:
    """Per trie level: the token ending at each node, and whether the node has children."""

    def __init__(self, vocab: Vocabulary):
        trie = trie_for(vocab)
        self.token_at: list[np.ndarray] = []
        self.extra: list[dict[int, list[int]]] = []  # tokens with the same bytes as another
        self.has_kids: list[np.ndarray] = []
        for d, level in enumerate(trie.level_bytes):
            at = np.full(len(level), -1, dtype=np.int64)
            extra: dict[int, list[int]] = {}
            for node, tok in zip(trie.end_node[d].tolist(), trie.end_token[d].tolist()):
                if at[node] < 0:
                    at[node] = tok
                else:
                    extra.setdefault(node, []).append(tok)
            self.token_at.append(at)
            self.extra.append(extra)
            self.has_kids.append(trie.child_hi[d] > trie.child_lo[d])

    def tokens_at(self, level: int, nodes: np.ndarray) -> np.ndarray:
        got = self.token_at[level][nodes]
        got = got[got >= 0]
        extra = self.extra[level]
        if extra:
            more = [t for n in np.intersect1d(nodes, np.fromiter(extra, dtype=np.int64)).tolist() for t in extra[n]]
            if more:
                got = np.concatenate([got, np.asarray(more, dtype=np.int64)])
        return got


_PER_VOCAB: dict[tuple[type, str], object] = {}
_PER_VOCAB_LOCK = threading.RLock()  # re-entrant: TokenEnds builds on the trie


def _once_per_vocab(kind: type, vocab: Vocabulary):
    """``kind(vocab)``, built once per process and vocabulary (keyed by its fingerprint)."""
    key = (kind, vocab.fingerprint)
    got = _PER_VOCAB.get(key)
    if got is None:
        with _PER_VOCAB_LOCK:
            got = _PER_VOCAB.get(key)
            if got is None:
                got = kind(vocab)
                _PER_VOCAB[key] = got
    return got


def string_index_for(vocab: Vocabulary) -> StringBodyIndex:
    """The string-body split of a vocabulary, built once per process."""
    return _once_per_vocab(StringBodyIndex, vocab)


def trie_for(vocab: Vocabulary) -> VocabTrie:
    """The trie of a vocabulary, built once per process."""
    return _once_per_vocab(VocabTrie, vocab)


def token_ends_for(vocab: Vocabulary) -> TokenEnds:
    """The token ends of a vocabulary's trie, built once per process."""
    return _once_per_vocab(TokenEnds, vocab)
