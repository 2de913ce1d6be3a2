"""Layers import downward only (STYLE.md rule 16); the engine layers load no model runtime they do not use.

The walk reads every module's source with ``ast`` (nothing is imported or run), so an import hidden inside
a function or under ``TYPE_CHECKING`` counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import veil

PACKAGE = Path(veil.__file__).parent

LAYERS: tuple[frozenset[str], ...] = (
    # value types and leaves every layer shares, with no model code
    frozenset(
        {"veil", "veil.errors", "veil.spec", "veil.report", "veil.settings"}
        | {"veil.detections", "veil.boxes", "veil.frames", "veil.clock", "veil.ids", "veil.private_files"}
        | {"veil.sqlbase"}
    ),
    frozenset({"veil.media"}),
    frozenset({"veil.detect", "veil.track", "veil.redact"}),
    frozenset({"veil.pipeline", "veil.evaluate"}),
    frozenset({"veil.storage", "veil.jobs", "veil.auth", "veil.receipts"}),
    frozenset({"veil.api", "veil.cli", "veil.web", "veil.client", "veil.__main__"}),
)
"""Bottom first. A module may import its own layer and the ones below it."""

SIBLINGS_APART = frozenset({"veil.detect", "veil.track", "veil.redact"})
"""Engine packages that share a layer but not code: what they share lives at the bottom."""

THROUGH_PIPELINE = {"veil.jobs": ("veil.media", "veil.track", "veil.detect", "veil.redact")}
"""Packages that reach the engine only through ``veil.pipeline`` (its stages), never around it."""

TABLES_ONLY = frozenset({"veil.media.formats"})
"""Pure data any layer may read: suffix, container and MIME tables."""


def _unit(module: str) -> str:
    """The layer unit a module belongs to: its top-level package, or the bottom-level module itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _rank(unit: str) -> int:
    for rank, layer in enumerate(LAYERS):
        if unit in layer:
            return rank
    raise AssertionError(f"{unit} is in no layer of tests/test_layers.py; add it where it belongs")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) of every ``veil`` import in the file, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return [(line, name) for line, name in found if name == "veil" or name.startswith("veil.")]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def _violations() -> list[str]:
    bad: list[str] = []
    for path in _modules():
        module = _module_name(path)
        unit = _unit(module)
        rank = _rank(unit)
        for line, imported in _imports(path, module):
            target = _unit(imported)
            if target == unit:
                continue
            where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported}"
            if _rank(target) > rank:
                bad.append(f"{where} (upward: {unit} sits below {target})")
            elif unit in SIBLINGS_APART and target in SIBLINGS_APART:
                bad.append(f"{where} ({unit} and {target} share a layer but not code)")
            elif target in THROUGH_PIPELINE.get(unit, ()) and imported not in TABLES_ONLY:
                bad.append(f"{where} ({unit} reaches the engine only through veil.pipeline)")
    return bad


def test_no_module_imports_upward_or_across_the_engine() -> None:
    assert _violations() == []


def test_every_package_and_bottom_module_has_a_layer() -> None:
    units = {_unit(_module_name(path)) for path in _modules()}
    assert [unit for unit in sorted(units) if not any(unit in layer for layer in LAYERS)] == []


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("media", "from veil.pipeline import run\n", "upward: veil.media sits below veil.pipeline"),
        ("media", "import veil.detect.runtime\n", "upward: veil.media sits below veil.detect"),
        ("media", "def f():\n    from veil.jobs.store import x\n", "upward: veil.media sits below veil.jobs"),
        ("media", "from veil.errors import MediaError\n", None),
        ("media", "from . import probe\n", None),
        ("track", "from veil.detect import Detections\n", "share a layer but not code"),
        ("jobs", "from veil.media.segments import split_at_keyframes\n", "only through veil.pipeline"),
        ("jobs", "if TYPE_CHECKING:\n    from veil.track import Track\n", "only through veil.pipeline"),
        ("jobs", "from veil.media.formats import content_type_for\n", None),
        ("jobs", "from veil.pipeline import Plan\n", None),
    ],
)
def test_the_walk_sees_wrong_imports_anywhere_in_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: str, source: str, expected: str | None
) -> None:
    """The checker itself: a planted import is reported (or not) as a reader would judge it."""
    fake = tmp_path / "veil"
    (fake / package).mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / package / "__init__.py").write_text("")
    (fake / package / "planted.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    found = _violations()
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and f"veil/{package}/planted.py" in found[0] and expected in found[0]


@pytest.mark.parametrize("package", ["veil.track", "veil.redact", "veil.media", "veil.settings", "veil.spec"])
def test_engine_layers_do_not_load_the_model_runtime(package: str) -> None:
    """Tracking and masking need no detector: importing them must not pay for onnxruntime (about 0.5 s)."""
    code = f"import sys, {package}; print(sorted(m for m in ('onnxruntime', 'onnx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
