"""XGrammar adapter (``pip install xgrammar``).

Options: ``strict_mode`` (default True, XGrammar's own default: undeclared properties/items are
never generated) and ``any_whitespace`` (default True). MaskBench runs it in the *compliant* mode
(``strict_mode=False``, what MaskBench calls "XGrammar (compliant)"), since strict mode rejects
valid instances. Single-threaded compiler (``max_threads=1``), no compile cache.
"""

from __future__ import annotations

import json

from .base import CompileError, EngineAdapter, Grammar, package_version


class _XgrGrammar(Grammar):
    def __init__(self, adapter: "XGrammarAdapter", compiled):
        import xgrammar as xgr

        self._matcher = xgr.GrammarMatcher(compiled)
        self._bitmask = xgr.allocate_token_bitmask(1, adapter.vocab_size)
        self.mask = self._bitmask[0].numpy()  # shares memory with the torch tensor
        self._adapter = adapter

    def reset(self):
        self._matcher.reset()

    def fill_mask(self):
        self._matcher.fill_next_token_bitmask(self._bitmask, 0)

    def accept_token(self, token_id):
        return bool(self._matcher.accept_token(token_id))

    def is_accepting(self):
        return bool(self._matcher.is_completed())


class XGrammarAdapter(EngineAdapter):
    name = "xgrammar"

    @classmethod
    def version(cls):
        return package_version("xgrammar")

    def setup(self):
        import xgrammar as xgr

        self._info = xgr.TokenizerInfo.from_huggingface(
            self.tokenizer, vocab_size=self.vocab_size, stop_token_ids=self.eos_token_ids or None)
        self._compiler = xgr.GrammarCompiler(self._info, max_threads=1, cache_enabled=False)

    def compile_json_schema(self, schema):
        strict = bool(self.options.get("strict_mode", True))
        any_ws = bool(self.options.get("any_whitespace", True))
        try:
            cg = self._compiler.compile_json_schema(
                json.dumps(schema) if not isinstance(schema, str) else schema,
                any_whitespace=any_ws, strict_mode=strict)
        except Exception as e:  # xgrammar raises RuntimeError/ValueError subclasses
            raise CompileError(f"{type(e).__name__}: {e}") from e
        return _XgrGrammar(self, cg)

    def compile_regex(self, pattern):
        try:
            cg = self._compiler.compile_regex(pattern)
        except Exception as e:
            raise CompileError(f"{type(e).__name__}: {e}") from e
        return _XgrGrammar(self, cg)

    def compile_grammar(self, text, dialect="gbnf"):
        """A context-free grammar in XGrammar's EBNF (GBNF-like, start rule ``root``):
        ``GrammarCompiler.compile_grammar``. Other dialects are refused."""
        if dialect not in ("gbnf", "ebnf"):
            raise CompileError(f"xgrammar: grammar dialect {dialect!r} not supported (use GBNF/EBNF)")
        try:
            cg = self._compiler.compile_grammar(text)
        except Exception as e:
            raise CompileError(f"{type(e).__name__}: {e}") from e
        return _XgrGrammar(self, cg)

    def compile_builtin_json_grammar(self):
        """XGrammar's own built-in JSON grammar (``GrammarCompiler.compile_builtin_json_grammar``)."""
        try:
            cg = self._compiler.compile_builtin_json_grammar()
        except Exception as e:
            raise CompileError(f"{type(e).__name__}: {e}") from e
        return _XgrGrammar(self, cg)
