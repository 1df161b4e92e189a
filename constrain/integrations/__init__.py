"""Adapters that plug compiled grammars into inference libraries.

- :mod:`constrain.integrations.transformers`: :class:`ConstrainLogitsProcessor` for
  Hugging Face ``model.generate``.
"""

__all__ = ["ConstrainLogitsProcessor"]


def __getattr__(name):  # lazy: importing constrain.integrations must not import transformers
    if name == "ConstrainLogitsProcessor":
        from .transformers import ConstrainLogitsProcessor

        return ConstrainLogitsProcessor
    raise AttributeError(name)
