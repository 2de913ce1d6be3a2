"""What only ``MemoryStorage`` does: it lists its keys, so tests can check what a job left behind. The
behaviour every backend shares is in ``test_contract.py``."""

from __future__ import annotations

from veil.storage import MemoryStorage


def test_keys_lists_what_is_left_after_moves_and_deletes() -> None:
    storage = MemoryStorage()
    storage.put_stream("jobs/b/tmp/output-1.jpg", [b"result"])
    storage.put_stream("jobs/bb/input", [b"other job"])
    assert storage.keys() == ["jobs/b/tmp/output-1.jpg", "jobs/bb/input"]
    storage.move("jobs/b/tmp/output-1.jpg", "jobs/b/output.jpg")
    assert storage.keys() == ["jobs/b/output.jpg", "jobs/bb/input"]
    assert storage.delete_prefix("jobs/b/") == 1
    storage.delete("jobs/bb/input")
    assert storage.keys() == []
