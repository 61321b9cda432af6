"""Where the probe's model runs: the ``device`` parameter checked before any model is loaded.

torch's own failure for a missing device comes late (after the model is loaded) and in its words
(``AssertionError: Torch not compiled with CUDA enabled``); this says which device is missing and
why, in scikit-learn's (a ValueError naming the parameter and what would work).
"""

import os

import torch

from .._devices import unusable_reason

__all__ = ["check_device"]


def check_device(device):
    """``torch.device`` for the ``device`` parameter (None stays None), or a ValueError that says
    which device is missing and why, before any model is loaded."""
    if device is None:
        return None
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device ({exc}). Use 'cpu', 'cuda', 'cuda:1', "
            "'mps', or None (a loaded model runs on the CPU)."
        ) from None
    if resolved.type == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            raise ValueError(
                f"device={device!r} needs a GPU build of torch, but this torch "
                f"({torch.__version__}) was built without CUDA (a CPU-only wheel). Install a "
                "CUDA build of torch, or use device='cpu' (or None)."
            )
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"device={device!r}: torch is built with CUDA but no GPU is visible "
                "(torch.cuda.is_available() is False; CUDA_VISIBLE_DEVICES="
                f"{os.environ.get('CUDA_VISIBLE_DEVICES', '(not set)')}). Check the driver "
                "(nvidia-smi), or use device='cpu' (or None)."
            )
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(
                f"device={device!r}: only {count} GPU(s) are visible (cuda:0 to cuda:{count - 1})."
            )
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device={device!r}: the Apple MPS backend is not available in this torch or on this "
            "machine; use device='cpu' (or None)."
        )
    elif resolved.type == "meta":
        raise ValueError("device='meta' holds no weights; a model cannot run there.")
    elif resolved.type not in ("cpu", "cuda", "mps") and (reason := unusable_reason(resolved)):
        raise ValueError(f"device={device!r} is not available here: {reason}")
    return resolved
