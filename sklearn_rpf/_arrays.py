"""Inputs as NumPy reads them, whatever the container."""

import torch

# Floating types NumPy has no dtype for: read as float32, which holds every one of their values.
_WIDENED = {torch.bfloat16} | {getattr(torch, name) for name in (
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz") if hasattr(torch, name)}


def untracked(array):
    """A torch tensor as NumPy can read it: detached from autograd, on the CPU and, for bfloat16
    and float8, widened to float32 (NumPy's ``__array__`` refuses all three with a torch error);
    a list or tuple of tensors element by element; anything else as it is. The caller's tensor is
    not changed. Sparse tensors and tensors on the meta device (no values) get a clear error."""
    if isinstance(array, torch.Tensor):
        if array.layout != torch.strided:
            raise ValueError(
                f"Got a torch tensor of layout {array.layout} (sparse or otherwise not strided); "
                "pass a dense one (tensor.to_dense())."
            )
        if array.device.type == "meta":
            raise ValueError("Got a torch tensor on the 'meta' device, which holds no values.")
        array = array.detach().cpu()
        return array.float() if array.dtype in _WIDENED else array
    if isinstance(array, (list, tuple)) and any(isinstance(a, torch.Tensor) for a in array):
        return [untracked(a) for a in array]  # a list whatever the sequence (a namedtuple too)
    return array
