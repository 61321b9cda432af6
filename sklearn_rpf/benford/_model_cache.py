"""The on-disk cache of GGUF models converted to safetensors: keyed on content, atomic, self-healing.

Dequantising a GGUF file takes about 20 s; the converted model (config, ``model.safetensors``,
tokenizer) is kept under ``$SKLEARN_RPF_CACHE`` (default ``~/.cache/sklearn_rpf``)::

    gguf/<name>-<sha256 of the GGUF file, 16 hex>/   one entry per GGUF content, with manifest.json
    gguf/.partial-<host>-<pid>-<random>/               an entry being written, renamed when complete
    digests.json                                       sha256 of files, by (path, size, mtime)

* Keyed on content: a reinstalled or edited GGUF file gets a new entry, and writing it removes
  the entries converted earlier from the same path (no second 513 MiB copy).
* Written atomically: into a ``.partial-*`` folder, renamed into place once complete; two
  processes converting at once each write their own and the second rename gives way. Partial
  folders left by a killed process are removed by the next save (owner process gone, or older
  than an hour when written from another host).
* Validated on read: ``manifest.json`` records each file's size and sha256 at write time; a
  missing, resized or altered file, or one that fails to load, is reported with its path in a
  warning, deleted and converted again once; if that fails too, the error names the folder and
  the fix.
* Hashing costs about 1 s per GB, so a file's sha256 is computed once per version and kept in
  ``digests.json`` by (path, size, modification time): a whole-file hash, not a sample, because a
  sample would not see a changed weight; the index makes it free on later loads. A file altered
  in place with the same size and modification time would go unnoticed; truncation, rewrites and
  reinstalls all change them.
"""

import contextlib
import hashlib
import json
import mmap
import os
import re
import secrets
import shutil
import socket
import struct
import tempfile
import threading
import time
import warnings
from pathlib import Path
from stat import S_ISDIR

from .._stack import caller_stacklevel

CACHE_ENV = "SKLEARN_RPF_CACHE"
MANIFEST = "manifest.json"
STALE_PARTIAL_S = 3600  # a partial folder of another host is abandoned after this long
_DIGEST_INDEX = "digests.json"
_PARTIAL_PREFIX = ".partial-"
_index_lock = threading.Lock()
_known_digests = {}  # (path, size, mtime_ns) -> sha256, this process's view of the index


class ModelCacheError(OSError):
    """The converted-model cache could not be repaired."""


class CorruptModelFileError(OSError, ValueError):
    """A model file (GGUF) is truncated or is not what its name says."""


def cache_root():
    """Folder holding converted models: ``$SKLEARN_RPF_CACHE`` or ``~/.cache/sklearn_rpf``; for
    a user with no home folder (no ``HOME``, no password entry: some containers and CI runners)
    ``sklearn_rpf-cache-<uid>`` in the temporary folder, rather than failing to load a model."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    try:
        return Path.home() / ".cache" / "sklearn_rpf"
    except (RuntimeError, KeyError):  # "Could not determine home directory."
        return _private_temporary_cache()


def _private_temporary_cache():
    """``sklearn_rpf-cache-<uid>`` in the temporary folder, made 0700 by this user. Anyone may
    create a name in /tmp first and fill it with weights whose manifest checks out: a folder
    that another user owns, or that others may write to, is never used (a fresh private folder
    for this process instead)."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    path = Path(tempfile.gettempdir()) / f"sklearn_rpf-cache-{uid if uid is not None else 'user'}"
    with contextlib.suppress(OSError):
        path.mkdir(mode=0o700)
    try:
        info = os.lstat(path)
        private = (S_ISDIR(info.st_mode) and (uid is None or info.st_uid == uid)
                   and not info.st_mode & 0o022)
    except OSError:
        private = False
    if private:
        return path
    # One private folder for the rest of the process: cache_root() is read at every digest and
    # entry lookup, and a new folder each time would leak folders and never find an entry.
    with _replacement_lock:
        if path not in _replacement_caches:
            _replacement_caches[path] = Path(tempfile.mkdtemp(prefix="sklearn_rpf-cache-"))
        return _replacement_caches[path]


_replacement_caches = {}  # unusable temporary cache folder -> this process's private one
_replacement_lock = threading.Lock()


def _new_name(prefix):
    """A name no other writer picks: host, process and random bits."""
    return f"{prefix}{_host()}-{os.getpid()}-{secrets.token_hex(4)}"


# ---------------------------------------------------------------------------------- digests
def _hash_file(path):
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _read_index(root):
    """The digest index, ``{path: [size, mtime_ns, sha256]}``; only well-formed entries (the
    file is a memo: an edited one is read as far as it makes sense, never trusted beyond)."""
    try:
        index = json.loads((root / _DIGEST_INDEX).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(index, dict):
        return {}
    return {path: entry for path, entry in index.items()
            if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], str)}


def _remember_digest(path, stat, digest):
    """Record a digest in this process and in the index file (best effort: it is only a memo)."""
    path = str(path)
    _known_digests[(path, stat.st_size, stat.st_mtime_ns)] = digest
    root = cache_root()
    with _index_lock:
        index = _read_index(root)
        index = {p: e for p, e in index.items() if os.path.exists(p)}  # forget deleted files
        index[path] = [stat.st_size, stat.st_mtime_ns, digest]
        with contextlib.suppress(OSError):
            root.mkdir(parents=True, exist_ok=True)
            # open(), not mkstemp (mode 0600): the umask decides who may read, as for the entries
            temporary = root / _new_name(".digests-")
            with open(temporary, "x") as file:
                json.dump(index, file)
            os.replace(temporary, root / _DIGEST_INDEX)  # readers never see half a file


def file_digest(path):
    """sha256 of a file's content, computed once per (path, size, modification time)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in _known_digests:
        return _known_digests[key]
    entry = _read_index(cache_root()).get(str(path))
    if entry is not None and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
        _known_digests[key] = entry[2]
        return entry[2]
    digest = _hash_file(path)
    _remember_digest(path, stat, digest)
    return digest


# --------------------------------------------------------------------------------- GGUF files
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
_MAX_DIMS = 4  # GGML_MAX_DIMS


def _gguf_data_end(buffer):
    """Bytes a GGUF file needs according to its own header (raises on a malformed header)."""
    from gguf import GGML_QUANT_SIZES

    position = 0

    def read(fmt):
        nonlocal position
        values = struct.unpack_from("<" + fmt, buffer, position)
        position += struct.calcsize("<" + fmt)
        return values

    def read_string():
        nonlocal position
        (length,) = read("Q")
        text = bytes(buffer[position : position + length])
        position += length
        return text

    def skip_value(kind):
        nonlocal position
        if kind == _STRING:
            read_string()
        elif kind == _ARRAY:
            item_kind, count = read("IQ")
            if item_kind in _SCALAR_SIZES:
                position += count * _SCALAR_SIZES[item_kind]
            else:
                for _ in range(count):
                    skip_value(item_kind)
        else:
            position += _SCALAR_SIZES[kind]

    magic, version = read("4sI")
    if magic != b"GGUF" or version < 2:
        raise ValueError("it does not start with a GGUF (version 2 or later) header")
    n_tensors, n_values = read("QQ")
    alignment = 32
    for _ in range(n_values):
        key = read_string()
        (kind,) = read("I")
        if key == b"general.alignment" and kind == 4:
            (alignment,) = read("I")
        else:
            skip_value(kind)
    end = 0
    for _ in range(n_tensors):
        read_string()
        (n_dims,) = read("I")
        if n_dims > _MAX_DIMS:  # "Q" * n_dims would be built first: 4e9 of them took 13 GB
            raise ValueError(f"a tensor has {n_dims} dimensions, more than GGUF's {_MAX_DIMS}")
        n_elements = 1
        for size in read("Q" * n_dims):
            n_elements *= size
        ggml_type, offset = read("IQ")
        block, block_bytes = GGML_QUANT_SIZES[ggml_type]
        end = max(end, offset + n_elements // block * block_bytes)
    data_start = -(-position // alignment) * alignment
    return data_start + end


def check_gguf_file(path, how_to_fix):
    """Raise CorruptModelFileError, with the path and ``how_to_fix``, unless the file holds all
    the bytes its header announces (a few dozen ms; transformers' own reader takes seconds)."""
    size = path.stat().st_size
    if size < 24:  # magic, version and the two counts
        raise CorruptModelFileError(
            f"The GGUF file {path} is truncated: it holds {size} bytes, less than a GGUF header. "
            f"{how_to_fix}"
        )
    try:
        with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            needed = _gguf_data_end(mm)
    except struct.error:
        raise CorruptModelFileError(
            f"The GGUF file {path} is truncated: it ends inside its own header, after {size} "
            f"bytes. {how_to_fix}"
        ) from None
    except (ValueError, KeyError, IndexError, OverflowError) as exc:
        detail = str(exc) if isinstance(exc, ValueError) else f"unknown type code {exc}"
        raise CorruptModelFileError(
            f"The GGUF file {path} is corrupt ({detail}). {how_to_fix}"
        ) from None
    if size < needed:
        raise CorruptModelFileError(
            f"The GGUF file {path} is truncated: it holds {size} bytes, its header describes "
            f"{needed}. {how_to_fix}"
        )


# ------------------------------------------------------------------------------ cache entries
def _entry_stem(gguf_path):
    """The start of an entry's name: the GGUF file's stem, cut to 64 bytes (a long name made the
    folder's name longer than the file system allows; the digest that follows tells apart)."""
    return gguf_path.stem.encode()[:64].decode(errors="ignore")


def entry_folder(gguf_path):
    """Cache folder for a GGUF file: its name and the start of its content's sha256. Entries are
    stored in float32 whatever dtype asked first ("f32": entries of older versions, saved in the
    dtype of the first load, are not read)."""
    return cache_root() / "gguf" / f"{_entry_stem(gguf_path)}-{file_digest(gguf_path)[:16]}-f32"


def _remove(path):
    """Delete a cache entry in the way, a folder or (edited by hand) a file."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _read_manifest(folder):
    try:
        return json.loads((folder / MANIFEST).read_text())
    except PermissionError:
        raise
    except (OSError, ValueError):
        return None


_UNREADABLE = "its manifest cannot be read by this user (permission denied)"


def entry_problem(folder, source_digest=None):
    """Why a cache entry cannot be trusted, or None when it was converted from the file of
    sha256 ``source_digest`` (when given) and holds exactly the files its manifest lists, each
    of its recorded size and sha256."""
    if not folder.is_dir() or folder.is_symlink():  # a link could point at another model
        return f"{folder} is not a folder of this cache"
    try:
        manifest = _read_manifest(folder)
    except PermissionError:
        return _UNREADABLE
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(
            isinstance(r, dict) and isinstance(r.get("size"), int) and
            isinstance(r.get("sha256"), str) for r in files.values()):
        return f"{folder / MANIFEST} is missing, unreadable or malformed"
    if source_digest is not None and manifest.get("source_sha256") != source_digest:
        return f"{folder / MANIFEST} records another GGUF file than this one"
    unlisted = sorted(p.name for p in folder.iterdir()
                      if p.is_file() and p.name != MANIFEST and p.name not in files)
    if unlisted:
        return f"{folder} holds file(s) its manifest does not list ({', '.join(unlisted)})"
    for name, recorded in files.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        size = path.stat().st_size
        if size != recorded["size"]:
            return f"{path} holds {size} bytes, {recorded['size']} were written"
        if file_digest(path) != recorded["sha256"]:
            return f"{path} does not match the checksum recorded when it was written"
    return None


def _host():
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_partials(parent):
    """Delete ``.partial-*`` folders whose writer is gone (a kill during a save leaves one)."""
    for folder in parent.glob(_PARTIAL_PREFIX + "*"):
        parts = folder.name[len(_PARTIAL_PREFIX) :].split("-")
        try:
            age = time.time() - folder.stat().st_mtime
        except OSError:
            continue
        same_host = len(parts) >= 2 and parts[0] == _host() and parts[1].isdigit()
        if (same_host and not _process_alive(int(parts[1]))) or (
            not same_host and age > STALE_PARTIAL_S
        ):
            shutil.rmtree(folder, ignore_errors=True)


def remove_replaced_entries(target, source):
    """Delete other entries converted from the same GGUF path (a reinstall, an edit) or whose
    source is gone, and entries of the earlier mtime-keyed layout ``<name>-<size>-<mtime>``."""
    stem = _entry_stem(source)
    old_layout = re.compile(re.escape(stem) + r"-\d+-\d+")
    for folder in target.parent.iterdir():
        if folder == target or not folder.is_dir() or not folder.name.startswith(stem + "-"):
            continue
        try:
            manifest = _read_manifest(folder)
        except PermissionError:  # another user's entry in a shared cache: not ours to judge
            continue
        if not isinstance(manifest, dict):
            replaced = bool(old_layout.fullmatch(folder.name))
        else:
            recorded = str(manifest.get("source", ""))
            replaced = recorded == str(source) or not os.path.exists(recorded)
        if replaced:
            shutil.rmtree(folder, ignore_errors=True)


def write_entry(target, model, tokenizer, source):
    """Save a converted model as the cache entry ``target``; False (with a warning) when the
    cache cannot be written."""
    staging = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(target.parent)
        # mkdir, not mkdtemp (mode 0700): an entry written for a team's shared cache (or in a
        # container image) must be readable by the users the umask lets read it.
        staging = target.parent / _new_name(_PARTIAL_PREFIX)
        staging.mkdir()
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        # Some writers make their files 0600 (safetensors' weights): give every file the mode
        # that a plain file written here gets, so that the umask alone decides.
        plain = staging / ".mode"
        plain.write_text("")
        mode = plain.stat().st_mode & 0o777
        plain.unlink()
        for path in staging.iterdir():
            if path.is_file():
                path.chmod(mode)
        files = {p.name: {"size": p.stat().st_size, "sha256": _hash_file(p)}
                 for p in sorted(staging.iterdir()) if p.is_file()}
        manifest = {"source": str(source), "source_sha256": file_digest(source), "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        for attempt in range(2):
            try:
                staging.rename(target)
                staging = None
            except OSError:
                if entry_problem(target, manifest["source_sha256"]) is None:  # another
                    # process finished first: as good
                    break
                if attempt == 1:
                    raise
                _remove(target)  # a corrupt entry in the way
            else:
                for name, recorded in files.items():  # a rename keeps sizes and times
                    path = (target / name).resolve()
                    _remember_digest(path, path.stat(), recorded["sha256"])
                break
        remove_replaced_entries(target, source)
        return True
    except OSError as exc:
        warnings.warn(
            f"Could not cache the converted model under {target.parent} ({exc}); the next load "
            f"will convert the GGUF file again. Set {CACHE_ENV} to a writable folder.",
            RuntimeWarning,
            stacklevel=caller_stacklevel(),
        )
        return False
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _load_checked(target, load_entry, source_digest=None):
    """``(loaded, None)`` for a sound entry, ``(None, what is wrong)`` otherwise."""
    problem = entry_problem(target, source_digest)
    if problem is not None:
        return None, problem
    try:
        return load_entry(target), None
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to read the entry is corruption
        return None, f"loading it failed with {type(exc).__name__}: {exc}"


def cached_conversion(gguf_path, convert, load_entry):
    """``(model, tokenizer)`` for a GGUF file: from its cache entry, else converted and saved.

    ``convert()`` dequantises the GGUF file; ``load_entry(folder)`` loads a saved entry. A
    corrupt entry is reported, deleted and rebuilt once. Loading the saved copy even right after
    converting makes the first and later loads give the same model.
    """
    target = entry_folder(gguf_path)
    digest = file_digest(gguf_path)
    if target.exists() or target.is_symlink():
        loaded, problem = _load_checked(target, load_entry, digest)
        if problem is None:
            return loaded
        if problem is _UNREADABLE:  # another user's entry: not corrupt, and not ours to delete
            warnings.warn(
                f"The cached conversion of {gguf_path.name} at {target} cannot be read by this "
                f"user (permission denied); converting the GGUF file without the cache. Let "
                f"this user read it (chmod -R a+rX), or set {CACHE_ENV} to a folder of its own.",
                RuntimeWarning,
                stacklevel=caller_stacklevel(),
            )
            return convert()
        warnings.warn(
            f"The cached conversion of {gguf_path.name} at {target} is corrupt ({problem}); "
            "deleting it and converting the GGUF file again.",
            RuntimeWarning,
            stacklevel=caller_stacklevel(),
        )
        _remove(target)
    model, tokenizer = convert()
    if not write_entry(target, model, tokenizer, gguf_path):
        return model, tokenizer
    loaded, problem = _load_checked(target, load_entry, digest)
    if problem is None:
        return loaded
    raise ModelCacheError(
        f"The converted model cache entry {target} is still unusable after being rebuilt "
        f"({problem}). Check that the disk is not full and the folder is writable, delete "
        f"{target}, or set {CACHE_ENV} to another folder."
    )
