"""The text dev-set generator (``tools/make_text_set.py``), importable by tests: tests render their
badges, documents and lines with the same code that makes the labelled set."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_TOOL = Path(__file__).resolve().parents[1] / "tools" / "make_text_set.py"


def text_set_tool() -> ModuleType:
    """``tools/make_text_set.py`` as a module (loaded once)."""
    name = "veil_tools_make_text_set"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, _TOOL)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module
