"""The benchmarks' stores and app homes are removed when they are done with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.common import scratch_dir


def test_a_scratch_dir_and_what_was_written_in_it_are_removed_after_the_block() -> None:
    with scratch_dir("nexus-test-scratch-") as home:
        (home / ".nexus").mkdir()
        (home / ".nexus" / "nexus.db").write_bytes(b"x" * 4096)
        assert home.name.startswith("nexus-test-scratch-")
    assert not home.exists()


def test_a_scratch_dir_is_removed_when_the_block_fails_too() -> None:
    kept: list[Path] = []
    with pytest.raises(RuntimeError, match="benchmark failed"), scratch_dir("nexus-test-scratch-") as home:
        kept.append(home)
        (home / "nexus.db").write_text("partial")
        raise RuntimeError("benchmark failed")
    assert not kept[0].exists()
