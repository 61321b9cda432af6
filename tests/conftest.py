"""Shared pytest fixtures."""

import os

import pytest
from lm_fixtures import TinyGPT2Folder


# --- BenfordDigitProbe: a tiny GPT-2 saved like a user's model folder --------------------------
@pytest.fixture(scope="session")
def tiny_lm_folder():
    """Folder with a 2-layer GPT-2 and its byte-level BPE tokenizer, loadable with model=<folder>."""
    return os.fspath(TinyGPT2Folder())
