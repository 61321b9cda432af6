"""What both estimators ask of a torch device beyond CPU, CUDA and MPS."""

import contextlib

import torch


def unusable_reason(device):
    """Why a tensor cannot go to ``device`` and come back, or None when it can: for the backends
    torch names but this machine may lack (xpu, xla, hpu, meta...), each failing its own way."""
    try:
        torch.zeros(1, device=device).add(1).cpu()
    except Exception as exc:  # noqa: BLE001 - a RuntimeError, AssertionError, ImportError...
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return None


def autocast_off(device=None):
    """A context in which the networks compute in the estimator's ``dtype``, even inside a
    caller's ``torch.autocast`` block (which would run their products in bfloat16 or float16:
    other numbers, or a member output of the wrong type). Enter it at once."""
    kinds = [kind for kind in {"cpu", "cuda", _device_type(device)} if _autocast_on(kind)]
    if not kinds:  # almost always: nothing to switch off, a microsecond per batch
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    for kind in kinds:
        stack.enter_context(torch.autocast(kind, enabled=False))
    return stack


def cpu_by_default():
    """A context in which tensors made without a device are made on the CPU, as the estimators
    expect (they move data to their ``device`` themselves), even after the caller's
    ``torch.set_default_device("cuda")`` (or "meta"). Only entered when the default is not the
    CPU: torch's device context intercepts every call made inside it."""
    default = torch.get_default_device() if hasattr(torch, "get_default_device") else \
        torch.empty(()).device  # torch < 2.3
    if default.type == "cpu":
        return contextlib.nullcontext()
    return torch.device("cpu")


def _device_type(device):
    try:
        return torch.device(device or "cpu").type
    except (RuntimeError, TypeError, ValueError):  # "auto" or a bad name: checked elsewhere
        return "cpu"


def _autocast_on(kind):
    try:
        return torch.is_autocast_enabled(kind)  # torch >= 2.4
    except RuntimeError:  # a device type autocast does not know ("meta"): never on there
        return False
    except TypeError:  # older torch: one function per device type, CPU and CUDA only
        if kind == "cpu":
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled() if kind == "cuda" else False
