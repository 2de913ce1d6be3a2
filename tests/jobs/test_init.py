from __future__ import annotations

import importlib


def test_public_names_are_exported_and_importable() -> None:
    module = importlib.import_module("veil.jobs")
    assert len(module.__all__) == len(set(module.__all__))
    for name in module.__all__:
        assert getattr(module, name) is not None, name
