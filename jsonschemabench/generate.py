"""Generation with a model (the JSONSchemaBench paper's protocol).

Prompt: system message "You need to generate a JSON object that matches the schema below.",
two few-shot examples (schema as a user message, a valid JSON object as the assistant's answer),
then the schema as the user message; the model's chat template; greedy decoding. Output is the
decoded text, parsed with ``json.loads`` as is and validated with
``Draft202012Validator(schema, format_checker=FormatChecker())``.

Every engine runs through the same loop: ``model.generate`` (greedy) with one
``transformers.LogitsProcessor`` that applies the engine's int32 bitmask (``unconstrained``
applies none). Timing per schema: compile time (the engine's compile call), time to first token
(from the start of the request, compile included, to the first generated token), time per output
token (the rest, divided by the number of tokens after the first), output tokens.

Each engine runs in an isolated worker (model loaded once per worker) with a compile deadline,
a generation deadline and an address-space limit; results are appended to a JSONL file and the run
resumes from it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

SYSTEM_PROMPT = "You need to generate a JSON object that matches the schema below."

# Two small in-context examples (schema -> a valid instance), in the paper's style.
FEW_SHOT = [
    ({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
                                        "email": {"type": "string", "format": "email"}},
      "required": ["name", "age"]},
     {"name": "Alice Martin", "age": 34, "email": "alice.martin@example.com"}),
    ({"type": "object", "properties": {
        "orderId": {"type": "string", "pattern": "^ORD-[0-9]{4}$"},
        "items": {"type": "array", "minItems": 1, "items": {
            "type": "object", "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"}},
            "required": ["sku", "quantity"]}},
        "status": {"enum": ["pending", "shipped", "delivered"]}},
      "required": ["orderId", "items", "status"]},
     {"orderId": "ORD-0042", "items": [{"sku": "A-17", "quantity": 2}], "status": "shipped"}),
]

UNCONSTRAINED = "unconstrained"


def build_messages(schema, few_shot: int = 2) -> list[dict]:
    msgs = [{"role": "system", "content": SYSTEM_PROMPT}]
    for s, ex in FEW_SHOT[:few_shot]:
        msgs.append({"role": "user", "content": json.dumps(s)})
        msgs.append({"role": "assistant", "content": json.dumps(ex)})
    msgs.append({"role": "user", "content": json.dumps(schema)})
    return msgs


def validate_output(schema, text: str) -> tuple[bool, str]:
    """(valid, message): ``json.loads`` as is, then Draft 2020-12 with format checking."""
    import jsonschema

    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError) as e:
        return False, f"not JSON: {e}"
    try:
        v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        err = jsonschema.exceptions.best_match(v.iter_errors(value))
    except Exception as e:  # invalid schema, unresolvable $ref, ...
        return False, f"validator error: {type(e).__name__}: {e}"[:500]
    if err is None:
        return True, ""
    return False, f"{err.message} at {'/'.join(map(str, err.absolute_path)) or '(root)'}"[:500]


# ------------------------------------------------------------------------------ logits processor
def make_logits_processor(grammar, prompt_len: int):
    """A ``transformers.LogitsProcessor`` that feeds the last sampled token to ``grammar`` and
    masks the scores with its bitmask (unpacked on the scores' device)."""
    import numpy as np
    import torch
    from transformers import LogitsProcessor

    class BitmaskLogitsProcessor(LogitsProcessor):
        def __init__(self):
            self.failed = None
            self.mask_us: list[float] = []

        def __call__(self, input_ids, scores):
            if input_ids.shape[1] > prompt_len and self.failed is None:
                t = int(input_ids[0, -1])
                if not grammar.accept_token(t):
                    self.failed = f"engine refused the token it allowed: {t}"
            a = time.perf_counter_ns()
            grammar.fill_mask()
            self.mask_us.append((time.perf_counter_ns() - a) / 1000)
            bits = np.unpackbits(grammar.mask.view(np.uint8), bitorder="little").astype(bool)
            width = scores.shape[-1]
            allowed = np.zeros(width, dtype=bool)
            n = min(width, bits.size)
            allowed[:n] = bits[:n]
            if not allowed.any():
                self.failed = self.failed or "no token allowed (dead end)"
                return scores
            block = torch.from_numpy(~allowed).to(scores.device)
            return scores.masked_fill(block, float("-inf"))

    return BitmaskLogitsProcessor()


class _TokenTimer:
    """A streamer that timestamps every generated token (the first ``put`` is the prompt)."""

    def __init__(self):
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value):
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.times.append(time.perf_counter())

    def end(self):
        pass


# ------------------------------------------------------------------------------------- worker
def worker_init(args: dict):
    import torch

    torch.set_num_threads(max(1, int(args.get("threads") or 1)))
    if args.get("model"):
        from constrain.models import load_model

        model, tok = load_model(args["model"], device="cpu")
    else:
        from constrain.models import load_default_model

        model, tok = load_default_model(device="cpu")
    model.eval()
    width = int(model.get_output_embeddings().weight.shape[0]) if model.get_output_embeddings() is not None \
        else int(model.config.vocab_size)
    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    if tok.eos_token_id is not None and tok.eos_token_id not in eos:
        eos.append(tok.eos_token_id)
    adapter = None
    if args["engine"] != UNCONSTRAINED:
        from .engines import make_adapter

        opts = dict(args.get("options") or {})
        opts.setdefault("generation_config", model.generation_config)
        adapter = make_adapter(args["engine_spec"], tok, vocab_size=width, eos_token_ids=eos, options=opts)
    max_pos = int(getattr(model.config, "max_position_embeddings", 0) or 0) or None
    model_name = args.get("model") or "default (SmolLM2-135M-Instruct)"

    def handle(task, emit):
        return run_one(model, tok, adapter, task["case"], eos, max_pos, task["max_new_tokens"],
                       task.get("few_shot", 2), emit, model_name)

    return handle


def run_one(model, tok, adapter, case, eos, max_pos, max_new_tokens, few_shot, emit, model_name):
    import torch

    rec = {"kind": "generate", "schema_id": case["id"], "subset": case["subset"], "model": model_name}
    t_start = time.perf_counter()
    grammar = None
    if adapter is not None:
        a = time.perf_counter_ns()
        try:
            grammar = adapter.compile_json_schema(case["schema"])
        except MemoryError:
            raise  # the worker is at its limit: it must be replaced (see worker.py)
        except Exception as e:
            rec.update(compiled=False, valid=False, status="compile_error",
                       compile_us=(time.perf_counter_ns() - a) / 1000, error=f"{type(e).__name__}: {e}"[:1000])
            return rec
        rec["compile_us"] = (time.perf_counter_ns() - a) / 1000
    rec["compiled"] = True
    emit("compiled")
    msgs = build_messages(case["schema"], few_shot)
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    input_ids = ids["input_ids"]
    prompt_len = int(input_ids.shape[1])
    rec["prompt_tokens"] = prompt_len
    budget = max_new_tokens
    if max_pos:
        budget = min(budget, max_pos - prompt_len)
    if budget < 16:
        rec.update(valid=False, status="prompt_too_long", output="", output_tokens=0)
        return rec
    procs = []
    proc = None
    if grammar is not None:
        grammar.reset()
        proc = make_logits_processor(grammar, prompt_len)
        procs.append(proc)
    timer = _TokenTimer()
    from transformers import LogitsProcessorList

    with torch.inference_mode():
        out = model.generate(input_ids=input_ids, attention_mask=ids.get("attention_mask"),
                             max_new_tokens=budget, do_sample=False, num_beams=1,
                             logits_processor=LogitsProcessorList(procs), eos_token_id=eos,
                             pad_token_id=eos[0] if eos else None, streamer=timer,
                             temperature=None, top_p=None, top_k=None)
    gen = out[0, prompt_len:].tolist()
    n_out = len(gen)
    stopped = bool(gen) and gen[-1] in eos
    text = tok.decode(gen, skip_special_tokens=True)
    rec.update(output=text, output_tokens=n_out, stopped_on_eos=stopped, status="ok")
    if timer.times:
        rec["ttft_ms"] = (timer.times[0] - t_start) * 1000
        if n_out > 1:
            rec["tpot_ms"] = (timer.times[-1] - timer.times[0]) / (n_out - 1) * 1000
    if proc is not None:
        if proc.mask_us:
            import numpy as np

            rec["mask_us_mean"] = float(np.mean(proc.mask_us))
        if proc.failed:
            rec["engine_note"] = proc.failed
    valid, msg = validate_output(case["schema"], text)
    rec["valid"] = valid
    if msg:
        rec["validation_error"] = msg
    return rec


# ------------------------------------------------------------------------------------- parent
@dataclass
class GenerateConfig:
    model: str | None
    output: str
    engines: list[str]
    max_new_tokens: int = 512
    compile_timeout: float = 40.0
    timeout: float = 120.0
    mem_limit_gb: float = 12.0
    resume: bool = True
    progress: bool = True
    few_shot: int = 2
    threads: int = 1


def run_generate(cases: list[dict], cfg: GenerateConfig, log=print) -> list[dict]:
    from .engines import canonical, is_available, spec_of
    from .progress import bar
    from .results import JsonlWriter, read_jsonl
    from .worker import IsolatedWorker, WorkerStartError

    engines = [canonical(e) for e in cfg.engines]
    model_key = cfg.model or "default"
    existing = read_jsonl(cfg.output) if cfg.resume else []
    if not cfg.resume and os.path.exists(cfg.output):
        os.remove(cfg.output)
    done = {(r.get("engine"), r.get("schema_id")) for r in existing
            if r.get("kind") == "generate" and r.get("model_key") == model_key}
    todo = {e: [c for c in cases if (e, c["id"]) not in done] for e in engines}
    avail = {}
    for e in engines:
        avail[e], why = (True, "") if e == UNCONSTRAINED else is_available(e)
        if not avail[e]:
            log(f"engine {e}: not available ({why}); skipped")
    total = sum(len(todo[e]) for e in engines if avail[e])
    pb = bar(total, desc="generate", enabled=cfg.progress)
    log_path = os.path.splitext(cfg.output)[0] + ".worker.log"
    t0 = time.perf_counter()
    with JsonlWriter(cfg.output) as out:
        for e in engines:
            if not avail[e] or not todo[e]:
                continue
            init = {"engine": e, "engine_spec": None if e == UNCONSTRAINED else spec_of(e),
                    "model": cfg.model, "threads": cfg.threads}
            w = IsolatedWorker("jsonschemabench.generate:worker_init", init,
                               mem_limit_gb=cfg.mem_limit_gb, log_path=log_path)
            try:
                w.ensure_started()
            except WorkerStartError as err:
                log(f"engine {e}: worker failed to start; skipped\n{err}")
                pb.update(len(todo[e]))
                continue
            n_valid = 0
            for case in todo[e]:
                pb.set_description(f"generate {e}", refresh=False)
                task = {"case": case, "max_new_tokens": cfg.max_new_tokens, "few_shot": cfg.few_shot}
                try:
                    o = w.run(task, [("compile", cfg.compile_timeout), ("generate", cfg.timeout)])
                except WorkerStartError as err:
                    o = None
                    rec = {"kind": "generate", "schema_id": case["id"], "subset": case["subset"],
                           "compiled": False, "valid": False, "status": "crash", "error": str(err)[:1000]}
                if o is not None:
                    if o.status == "ok":
                        rec = o.payload
                    else:
                        compiled = "compiled" in o.progress
                        rec = {"kind": "generate", "schema_id": case["id"], "subset": case["subset"],
                               "compiled": compiled, "valid": False,
                               "status": "timeout" if o.status == "timeout" else "crash",
                               "phase": o.phase, "error": o.detail[:2000]}
                    rec["wall_s"] = round(o.wall_s, 3)
                rec.update(engine=e, model_key=model_key)
                out.write(rec)
                n_valid += bool(rec.get("valid"))
                pb.set_postfix_str(f"{e}: {n_valid} valid", refresh=False)
                pb.update(1)
            w.close()
    pb.close()
    wanted = {c["id"] for c in cases}
    records = [r for r in read_jsonl(cfg.output) if r.get("kind") == "generate"
               and r.get("model_key") == model_key and r["schema_id"] in wanted and r["engine"] in engines]
    from .metrics import generation_summary

    s = generation_summary(records)
    log(f"generate done in {time.perf_counter() - t0:.0f}s: " + "; ".join(
        f"{e} declared {v['declared_coverage']:.0%}, empirical {v['empirical_coverage']:.0%}, "
        f"compliance {v['compliance']:.0%}" for e, v in s.items()))
    return records
