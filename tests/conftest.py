"""Shared fixtures. Real media lives in ../shared/data (research use only) and is never copied here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TALKINGHEAD_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared development data folder; tests that need it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared development data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def one_thread():
    """One torch intra-op thread: on 2 shared cores, 2 OpenMP threads can spin-wait and run far slower, and these
    tests' tiny networks gain nothing from a second thread. Use with ``pytestmark = usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
