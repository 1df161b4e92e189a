"""Lexemes of the grammar IR as byte terms (see ``constrain.terms``)."""

from __future__ import annotations

from ..errors import GrammarError, RegexError
from ..regex import Encoding, Lowering
from ..terms import ALL_BYTES, TermStore
from .ir import Lexeme


def lexeme_term(store: TermStore, lexeme: Lexeme) -> int:
    """The byte term of ``lexeme``'s language; raises ``GrammarError`` naming the terminal.

    A ``first_match`` lexeme keeps only the strings with no proper prefix in the language
    (``L ∧ ¬(L·Σ⁺)``): it ends where its text first matches, as a lazy regex does.
    """
    if lexeme.term is not None:
        term = lexeme.term
    else:
        try:
            term = Lowering(store).fullmatch(lexeme.pattern, Encoding.RAW)
        except RegexError as e:
            raise GrammarError(f"terminal {lexeme.name!r}: {e}", rule=lexeme.name) from None
    if lexeme.first_match:
        anything = store.byte_set(ALL_BYTES)
        term = store.and_(term, store.not_(store.seq(term, anything, store.star(anything))))
    if store.nullable[term]:
        raise GrammarError(f"terminal {lexeme.name!r} matches the empty string", rule=lexeme.name)
    if store.is_empty(term):
        raise GrammarError(f"terminal {lexeme.name!r} matches nothing", rule=lexeme.name)
    return term
