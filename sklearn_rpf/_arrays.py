"""Inputs as NumPy reads them, whatever the container."""

import torch


def untracked(array):
    """A torch tensor as NumPy can read it: detached from autograd and on the CPU (NumPy's
    ``__array__`` refuses both, with a torch error); anything else as it is. The caller's tensor
    is not changed."""
    if isinstance(array, torch.Tensor):
        return array.detach().cpu()
    return array
