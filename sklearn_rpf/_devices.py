"""What both estimators ask of a torch device beyond CPU, CUDA and MPS."""

import torch


def unusable_reason(device):
    """Why a tensor cannot go to ``device`` and come back, or None when it can: for the backends
    torch names but this machine may lack (xpu, xla, hpu, meta...), each failing its own way."""
    try:
        torch.zeros(1, device=device).add(1).cpu()
    except Exception as exc:  # noqa: BLE001 - a RuntimeError, AssertionError, ImportError...
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return None
