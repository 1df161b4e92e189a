"""Our engine: ``constrain.Compiler(tokenizer, cache_size=0)`` → ``compile_json_schema`` /
``compile_regex`` → ``matcher()`` with ``fill_bitmask`` / ``accept_token`` / ``is_accepting`` /
``reset``.
Any ``constrain.ConstrainError`` at compile time (``UnsupportedSchemaError`` naming the keyword,
``BudgetExceededError``, ...) is a compile error."""

from __future__ import annotations

import numpy as np

from .base import CompileError, EngineAdapter, Grammar, package_version


class _ConstrainGrammar(Grammar):
    def __init__(self, adapter: "ConstrainAdapter", compiled):
        self._m = compiled.matcher()
        self.mask = np.zeros(adapter.n_words, dtype=np.int32)

    def reset(self):
        self._m.reset()

    def fill_mask(self):
        self._m.fill_bitmask(self.mask)

    def accept_token(self, token_id):
        return bool(self._m.accept_token(token_id))

    def is_accepting(self):
        return bool(self._m.is_accepting())


class ConstrainAdapter(EngineAdapter):
    name = "constrain"

    @classmethod
    def version(cls):
        return package_version("constrain")

    def setup(self):
        import constrain
        # the first compile would import these: loaded here, as the other engines load their code
        import constrain.cfg.engine  # noqa: F401
        import constrain.json_schema  # noqa: F401

        # No compile cache, as for xgrammar: each schema is compiled once here, so cached grammars
        # would only hold memory (and serve the corpus's duplicate schemas without compiling).
        kw = {"cache_size": 0}
        if self.vocab_size != len(self.tokenizer):
            kw["logits_width"] = self.vocab_size
        if self.options.get("generation_config") is not None:
            kw["generation_config"] = self.options["generation_config"]
        self._compiler = constrain.Compiler(self.tokenizer, **kw)
        vocab = getattr(self._compiler, "vocab", None)
        size = getattr(vocab, "size", None)
        if size:
            self.n_words = max(self.n_words, (int(size) + 31) // 32)

    def _wrap(self, fn, arg):
        import constrain

        try:
            compiled = fn(arg)
        except constrain.ConstrainError as e:
            raise CompileError(f"{type(e).__name__}: {e}") from e
        return _ConstrainGrammar(self, compiled)

    def compile_json_schema(self, schema):
        opts = self.options.get("json_options") or {}
        return self._wrap(lambda s: self._compiler.compile_json_schema(s, **opts), schema)

    def compile_regex(self, pattern):
        return self._wrap(self._compiler.compile_regex, pattern)

    def compile_grammar(self, text, dialect="lark"):
        """A context-free grammar (``dialect``: "lark", "gbnf" or "auto"), via
        ``Compiler.compile_grammar``."""
        return self._wrap(lambda t: self._compiler.compile_grammar(t, dialect=dialect), text)
