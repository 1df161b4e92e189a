"""Ready-made grammars, in Lark (``.lark``, start rule ``start``) and GBNF (``.gbnf``, start rule
``root``): json, arithmetic, csv, sql_select, python_expr, smiles.

>>> "json" in names()
True
>>> load("json", "gbnf").startswith("#")
True
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent
_SUFFIX = {"lark": ".lark", "gbnf": ".gbnf"}


def names(dialect: str | None = None) -> list[str]:
    """The grammars available in ``dialect`` ("lark" or "gbnf"), or in either."""
    suffixes = [_suffix(dialect)] if dialect else list(_SUFFIX.values())
    return sorted({p.stem for p in _HERE.iterdir() if p.suffix in suffixes})


def path(name: str, dialect: str = "lark") -> Path:
    """The file of grammar ``name``; raises ``ValueError`` listing the grammars there are."""
    file = _HERE / f"{name}{_suffix(dialect)}"
    if not file.is_file():
        raise ValueError(f"no {dialect} grammar {name!r}; available: {', '.join(names(dialect))}")
    return file


def load(name: str, dialect: str = "lark") -> str:
    """The text of grammar ``name`` in ``dialect``: ``load("json")`` is json.lark's."""
    return path(name, dialect).read_text(encoding="utf-8")


def _suffix(dialect: str) -> str:
    try:
        return _SUFFIX[dialect]
    except KeyError:
        raise ValueError(f"unknown grammar dialect {dialect!r}; use 'lark' or 'gbnf'") from None
