"""Shared helpers: locating ../shared (fixtures) and the repository's data/demo."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def shared_dir():
    """``$MUSIC_CRS_SHARED_DIR``, or the first ``shared/`` with fixtures beside an ancestor."""
    env = os.environ.get("MUSIC_CRS_SHARED_DIR")
    if env:
        return Path(env)
    for base in [Path.cwd(), *Path.cwd().parents, REPO, *REPO.parents]:
        if (base / "shared" / "fixtures").is_dir():
            return base / "shared"
    return None


def shared_path(relative):
    """The path of ``relative`` in shared/; skips (fails with MUSIC_CRS_REQUIRE_SHARED=1)
    when it is absent, as the Rust tests do."""
    base = shared_dir()
    path = base / relative if base else None
    if path is None or not path.exists():
        reason = f"shared/{relative} not found beside the project root"
        if os.environ.get("MUSIC_CRS_REQUIRE_SHARED") == "1":
            pytest.fail(f"{reason}; MUSIC_CRS_REQUIRE_SHARED=1 requires it")
        pytest.skip(reason)
    return path
