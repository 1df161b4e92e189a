"""Constrained decoding of a tiny masked diffusion model: unconstrained vs DINGO vs SMC.

A small bidirectional transformer (BertForMaskedLM, random init) is trained on CPU for a few
minutes, MDLM/LLaDA style (mask each canvas position with probability t ~ U(0, 1), cross-entropy
on the masked positions), to turn a prompt ``name_>`` (the name padded with ``_``) into the JSON
record ``{"name":"<name>","age":<0-99>}`` followed by EOS padding, character by character.

It is then decoded under the JSON Schema of those records, with two schedules (one token per
step; four tokens per step, where parallel decoding makes the unconstrained sampler slip), by

- ``unconstrained`` (sampled) and ``unconstrained-greedy``;
- ``dingo``: the most probable completable assignment at every step;
- ``sample``: exact constrained sampling of every step, unweighted;
- ``smc``: ``--particles`` particles weighted by the exact step normalizers (one output per prompt
  drawn ∝ weight).

Printed per row: validity under the schema, mean log-likelihood of the outputs under the model
(the left-to-right decomposition ``Σ_i log p(x_i | prompt, x_<i, rest masked)``, a normalized
distribution over canvases), how often the name is copied right, and seconds per output.

A second table checks the distribution claims exactly, with an oracle denoiser over 4-token
canvases: the KL to the target (the joint conditioned on a regex) of the unweighted constrained
sampler (exact enumeration) and of SMC (pooled over runs).

    .venv/bin/python benchmarks/diffusion_demo.py            # ~4-6 minutes on one CPU thread
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np

import constrain
from constrain.diffusion import DiffusionAdapter, as_token_dfa, generate
from constrain.diffusion.exact import conditioned_joint, kl, sampler_distribution
from constrain.diffusion.toys import OracleDenoiser, random_joint
from constrain.sampling.toys import toy_vocabulary
from constrain.vocab import Vocabulary

CHARS = '{}":,' + "abcdefghijklmnopqrstuvwxyz0123456789_>"
EOS = len(CHARS)
MASK = EOS + 1
PROMPT_LEN = 7  # six name characters (padded with "_") and ">"
GEN_LENGTH = 28
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "pattern": "^[a-z]{2,6}$"},
                   "age": {"type": "integer", "minimum": 0, "maximum": 99}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def encode(text: str) -> list[int]:
    return [CHARS.index(c) for c in text]


def random_record(rng: np.random.Generator) -> tuple[list[int], list[int], str]:
    name = "".join(rng.choice(list(LETTERS), size=int(rng.integers(2, 7))))
    record = json.dumps({"name": name, "age": int(rng.integers(0, 100))}, separators=(",", ":"))
    canvas = encode(record) + [EOS] * (GEN_LENGTH - len(record))
    return encode(name.ljust(6, "_") + ">"), canvas, name


def build_model(seed: int):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    cfg = BertConfig(vocab_size=MASK + 1, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=128, max_position_embeddings=PROMPT_LEN + GEN_LENGTH,
                     type_vocab_size=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    return BertForMaskedLM(cfg)


def train(model, steps: int, batch: int, seed: int, log) -> float:
    import torch

    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    model.train()
    t0 = time.time()
    for step in range(steps):
        rows = [random_record(rng) for _ in range(batch)]
        x = torch.tensor([p + c for p, c, _ in rows])
        t = torch.rand(batch, 1).clamp_min(0.05)
        masked = torch.rand(batch, GEN_LENGTH) < t
        masked[masked.sum(1) == 0, 0] = True
        masked = torch.cat([torch.zeros(batch, PROMPT_LEN, dtype=torch.bool), masked], dim=1)
        logits = model(x.masked_fill(masked, MASK)).logits
        loss = torch.nn.functional.cross_entropy(logits[masked], x[masked])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0 or step == steps - 1:
            log(f"  step {step:5d}  loss {loss.item():.4f}  ({time.time() - t0:.0f} s)")
    model.eval()
    return time.time() - t0


def l2r_loglik(adapter: DiffusionAdapter, prompts: np.ndarray, outs: np.ndarray) -> np.ndarray:
    """Σ_i log p(x_i | prompt, x_<i, rest masked), for each row."""
    canvas = np.concatenate([prompts, np.full_like(outs, MASK)], axis=1)
    total = np.zeros(len(outs))
    for i in range(GEN_LENGTH):
        lp = adapter.logprobs(canvas, PROMPT_LEN + i, PROMPT_LEN + i + 1)[:, 0]
        total += lp[np.arange(len(outs)), outs[:, i]]
        canvas[:, PROMPT_LEN + i] = outs[:, i]
    return total


def decode(adapter, grammar, prompts, names, *, method, steps, particles, seed):
    rng = np.random.default_rng(seed)
    dfa = as_token_dfa(grammar)
    outs, t0 = [], time.time()
    for p in prompts:
        kw = dict(gen_length=GEN_LENGTH, steps=steps, seed=rng)
        if method == "unconstrained-greedy":
            res = generate(adapter, p, grammar, method="unconstrained", greedy=True, **kw)
        elif method == "smc":
            res = generate(adapter, p, grammar, method="smc", num_particles=particles, **kw)
        else:
            res = generate(adapter, p, grammar, method=method, **kw)
        s = res.draw(rng) if method == "smc" else res.samples[0]
        outs.append(s.tokens if s is not None else res.samples[0].tokens)
    secs = (time.time() - t0) / len(prompts)
    outs = np.array(outs)
    valid = np.array([dfa.accepts(o) for o in outs])
    ll = l2r_loglik(adapter, np.array(prompts), outs)
    copied = []
    for o, name in zip(outs, names):
        text = "".join(CHARS[t] for t in o if t < EOS)
        try:
            copied.append(json.loads(text)["name"] == name)
        except (ValueError, KeyError, TypeError):
            copied.append(False)
    return valid.mean(), ll.mean(), float(np.mean(copied)), secs


def exact_table(log, seeds: int, particles: list[int]) -> list[str]:
    """KL to the target on an oracle denoiser (4-token canvases over {a, b, ab, EOS})."""
    vocab = toy_vocabulary((b"a", b"b", b"ab"), bos=False)
    g = constrain.Compiler(vocab).compile_regex("(ab|b)+a?")
    dfa = as_token_dfa(g)
    joint = random_joint(vocab.size, 4, np.random.default_rng(3), alpha=0.5)
    orc = OracleDenoiser(joint)
    ad = DiffusionAdapter(orc, orc.mask_id)
    q, z = conditioned_joint(joint, dfa)
    lines = [f"Exact check: oracle denoiser, 4-token canvases, regex (ab|b)+a?, Z_L = {z:.4f}, "
             "one token per step (low_confidence order)",
             f"{'sampler':<44}{'KL(. || Q)':>12}"]
    lines.append(f"{'unconstrained (exact enumeration), vs joint':<44}"
                 f"{max(0.0, kl(sampler_distribution(ad, [], 4), {x: float(joint[x]) for x in np.ndindex(joint.shape)})):>12.1e}")
    lines.append(f"{'sample: constrained, unweighted (exact enum.)':<44}"
                 f"{kl(sampler_distribution(ad, [], 4, dfa=dfa), q):>12.4f}")
    for n in particles:
        pooled: Counter = Counter()
        for s in range(seeds):
            res = generate(ad, [], g, gen_length=4, method="smc", num_particles=n, seed=s)
            for smp in res.samples:
                pooled[tuple(smp.tokens)] += math.exp(smp.log_weight)
        tot = sum(pooled.values())
        lines.append(f"{f'smc, {n} particles, pooled over {seeds} runs':<44}"
                     f"{kl({x: v / tot for x, v in pooled.items()}, q):>12.4f}")
    for line in lines:
        log(line)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-steps", type=int, default=2500)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--prompts", type=int, default=100)
    ap.add_argument("--particles", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "diffusion_demo.txt"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    lines: list[str] = []

    def log(s: str = "") -> None:
        print(s, flush=True)

    vocab = Vocabulary([c.encode() for c in CHARS] + [None, None], eos_token_ids=[EOS],
                       special_token_ids=[MASK], name="chars")
    grammar = constrain.Compiler(vocab).compile_json_schema(SCHEMA)

    log(f"Training a {GEN_LENGTH}-position masked diffusion model ({args.train_steps} steps of "
        f"{args.batch}, {args.threads} thread(s))")
    model = build_model(args.seed)
    secs = train(model, args.train_steps, args.batch, args.seed, log)
    adapter = DiffusionAdapter(model, MASK, convention="llada")

    rng = np.random.default_rng(args.seed + 1)
    recs = [random_record(rng) for _ in range(args.prompts)]
    prompts, names = [r[0] for r in recs], [r[2] for r in recs]

    n_params = sum(p.numel() for p in model.parameters())
    lines.append(f"Tiny masked diffusion model (BertForMaskedLM, {n_params / 1e3:.0f}k parameters) trained "
                 f"{secs:.0f} s on {args.threads} CPU thread(s): prompt 'name_>' -> "
                 '{"name":"<name>","age":<0-99>} + EOS padding, canvas of 28 characters.')
    lines.append(f"Decoded under the JSON Schema, {args.prompts} prompts, one output each "
                 f"(SMC: {args.particles} particles, one output drawn by weight).")
    lines.append("log-lik: mean log p(output | prompt) under the model, left-to-right decomposition.")
    lines.append("")
    header = f"{'schedule':<22}{'method':<22}{'valid':>8}{'log-lik':>10}{'name ok':>9}{'s/output':>10}"
    lines.append(header)
    log("\n" + "\n".join(lines))
    for steps, label in ((GEN_LENGTH, "1 token/step"), (GEN_LENGTH // 4, "4 tokens/step")):
        for method in ("unconstrained", "unconstrained-greedy", "dingo", "sample", "smc"):
            v, ll, ok, sp = decode(adapter, grammar, prompts, names, method=method, steps=steps,
                                   particles=args.particles, seed=args.seed + 2)
            row = f"{label:<22}{method:<22}{v:>8.1%}{ll:>10.2f}{ok:>9.1%}{sp:>10.3f}"
            lines.append(row)
            log(row)
    lines.append("")
    log()
    lines.extend(exact_table(log, seeds=200, particles=[4, 16]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    log(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
