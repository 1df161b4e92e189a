"""Run the Hugging Face logits processor on a CUDA device and check the mask stays on the device.

    python benchmarks/gpu_logits_processor.py [TOKENIZER_DIR]

1. ``apply_token_bitmask_`` on CUDA logits (batch 16, vocabulary of the tokenizer): equal to a
   host reference, the logits tensor is modified in place on the device; timed with CUDA events.
2. ``model.generate`` of a small random-init Llama on CUDA with ``ConstrainLogitsProcessor``
   built from a regex: every output matches (``re.fullmatch``).
"""

from __future__ import annotations

import re
import sys

import numpy as np
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

import constrain
from constrain.bitmask import apply_token_bitmask_, unpack_bitmask_np
from constrain.integrations.transformers import ConstrainLogitsProcessor


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    path = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/tokenizers/smollm2"
    tok = AutoTokenizer.from_pretrained(path)
    compiler = constrain.Compiler(tok)
    vocab_size = compiler.vocab.size
    device = torch.device("cuda")
    print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| V =", vocab_size)

    # 1. mask application on the device
    grammar = compiler.compile_regex(r"[A-Z][a-z]{2,8} [0-9]{1,3}")
    rng = np.random.default_rng(0)
    batch = 16
    bitmask = constrain.allocate_token_bitmask(batch, vocab_size)
    m = grammar.matcher()
    for b in range(batch):
        m.fill_bitmask(bitmask[b])
        ids = m.allowed_token_ids()
        if len(ids):
            m.accept_token(int(rng.choice(ids)))
    logits = torch.randn(batch, vocab_size, device=device)
    reference = logits.cpu().numpy().copy()
    allowed = unpack_bitmask_np(bitmask, vocab_size)
    reference[~allowed] = -np.inf
    ptr = logits.data_ptr()
    apply_token_bitmask_(logits, bitmask)
    assert logits.is_cuda and logits.data_ptr() == ptr, "logits must be masked in place on the device"
    assert np.array_equal(logits.cpu().numpy(), reference), "device mask differs from host reference"
    mask_dev = torch.from_numpy(bitmask).to(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(10):
        apply_token_bitmask_(logits, mask_dev)
    torch.cuda.synchronize()
    start.record()
    for _ in range(100):
        apply_token_bitmask_(logits, mask_dev)
    end.record()
    torch.cuda.synchronize()
    print(f"apply_token_bitmask_ on CUDA, batch {batch} x {vocab_size}: "
          f"{start.elapsed_time(end) / 100 * 1000:.1f} us per call (mask already on device); equal to host reference")

    # 2. generate() with the processor on CUDA
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = LlamaForCausalLM(config).to(device).eval()
    pattern = r"(yes|no|maybe), [0-9]{2}\.[0-9] (kg|lb)"
    proc = ConstrainLogitsProcessor(compiler.compile_regex(pattern), tokenizer=tok)
    inputs = tok(["Answer:", "Weight?"], return_tensors="pt", padding=True).to(device) if tok.pad_token \
        else {"input_ids": torch.tensor([tok.encode("Answer:")] * 2, device=device)}
    for do_sample in (False, True):
        out = model.generate(**inputs, logits_processor=[proc], max_new_tokens=40, do_sample=do_sample,
                             pad_token_id=tok.eos_token_id, num_return_sequences=1)
        prompt_len = inputs["input_ids"].shape[1]
        for row in out:
            text = tok.decode(row[prompt_len:], skip_special_tokens=True)
            ok = re.fullmatch(pattern, text) is not None
            print(f"generate(do_sample={do_sample}) on {row.device}: {text!r} fullmatch={ok}")
            assert ok
    print("OK: masks applied on", device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
