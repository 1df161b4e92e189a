"""constrain: make language models emit text that provably matches a regex, a JSON Schema or a grammar.

>>> import constrain                                                       # doctest: +SKIP
>>> constrain.generate_json({"type": "object", "properties": {"name": {"type": "string"}}},
...                         "A person named Ada")                           # doctest: +SKIP
{'name': 'Ada'}
"""

from .api import generate, generate_json
from .bitmask import allocate_token_bitmask, apply_token_bitmask_
from .compiler import CompiledGrammar, Compiler
from .errors import (
    BudgetExceededError,
    ConstrainError,
    GenerationError,
    GrammarError,
    ModelNotFoundError,
    RegexError,
    SchemaError,
    UnsupportedSchemaError,
    VocabularyError,
)
from .matcher import Matcher
from .models import load_default_model, load_model
from .vocab import Vocabulary

__version__ = "0.1.0"

__all__ = [
    "BudgetExceededError",
    "CompiledGrammar",
    "Compiler",
    "ConstrainError",
    "GenerationError",
    "GrammarError",
    "Matcher",
    "ModelNotFoundError",
    "RegexError",
    "SchemaError",
    "UnsupportedSchemaError",
    "Vocabulary",
    "VocabularyError",
    "allocate_token_bitmask",
    "apply_token_bitmask_",
    "generate",
    "generate_json",
    "load_default_model",
    "load_model",
]
