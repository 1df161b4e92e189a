"""Typed errors. Every error the engine raises on bad input derives from ConstrainError."""

from __future__ import annotations


class ConstrainError(Exception):
    """Base class of every error raised by constrain."""


class RegexError(ConstrainError):
    """A regular expression is malformed or uses syntax we cannot enforce.

    ``position`` is the 0-based character offset in ``pattern`` where the problem starts.
    """

    def __init__(self, message: str, pattern: str = "", position: int | None = None):
        self.pattern = pattern
        self.position = position
        where = f" at position {position}" if position is not None else ""
        shown = f" in {pattern!r}" if pattern else ""
        super().__init__(f"{message}{where}{shown}")


class GrammarError(ConstrainError):
    """A grammar is malformed (undefined rule, empty language, ...)."""

    def __init__(self, message: str, rule: str | None = None, position: int | None = None):
        self.rule = rule
        self.position = position
        parts = [message]
        if rule is not None:
            parts.append(f"rule {rule!r}")
        if position is not None:
            parts.append(f"position {position}")
        super().__init__(", ".join(parts))


class UnsupportedSchemaError(ConstrainError):
    """A JSON Schema uses a keyword (or value) that we cannot enforce exactly.

    ``keyword`` names the keyword, ``path`` is the JSON pointer of the subschema holding it.
    """

    def __init__(self, keyword: str, path: str, detail: str = ""):
        self.keyword = keyword
        self.path = path or "#"
        self.detail = detail
        extra = f": {detail}" if detail else ""
        super().__init__(f"unsupported keyword {keyword!r} at {self.path}{extra}")


class SchemaError(ConstrainError):
    """A JSON Schema is invalid (not JSON, wrong type for a keyword, dangling $ref, ...)."""

    def __init__(self, message: str, path: str = "#"):
        self.path = path
        super().__init__(f"{message} at {path}")


class BudgetExceededError(ConstrainError):
    """Compilation or mask computation exceeded its resource budget (states or time)."""


class VocabularyError(ConstrainError):
    """A tokenizer's vocabulary cannot be mapped to exact token byte strings.

    Raised for tokenizers of an unknown or lossy kind (no decoder, WordPiece, ...), for logits
    narrower than the tokenizer where a dropped id is a real text token, and for inconsistent
    arguments to ``Vocabulary``.
    """


class ModelNotFoundError(ConstrainError):
    """A language model (or the default model's package) could not be found locally."""


class GenerationError(ConstrainError):
    """Constrained generation produced no usable result.

    ``reason`` is ``"incomplete"`` (the token budget ran out before the output was a complete
    match) or ``"invalid"`` (the output failed validation); ``text`` is the generated text.
    """

    def __init__(self, message: str, text: str = "", reason: str = "invalid"):
        self.text = text
        self.reason = reason
        super().__init__(message)
