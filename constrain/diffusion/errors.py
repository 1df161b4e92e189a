"""Typed errors of diffusion decoding."""

from __future__ import annotations

from ..errors import ConstrainError


class UnsatisfiableError(ConstrainError):
    """No string of the constraint's language fits in the canvas.

    ``length`` is the canvas length (generated positions), ``needed`` the fewest tokens any
    string of the language takes (``None`` when no string can be spelled with the vocabulary,
    or when it is not known: context-free constraints), ``reason`` overrides the explanation.
    """

    def __init__(self, length: int, needed: int | None, reason: str | None = None):
        self.length = length
        self.needed = needed
        why = reason or ("the vocabulary cannot spell any string of the language" if needed is None
                         else f"the shortest string of the language takes {needed} tokens")
        super().__init__(f"no string of the constraint fits in a canvas of {length} tokens: {why}")
