"""Model provisioning: a real pull from the package index (once per session), then
what users hit when a file goes missing or bad, and the air-gap round trip."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from veil.detect.models import MODELS, ModelStore
from veil.errors import ModelCorrupt, ModelMissing


@pytest.fixture(scope="session")
def pulled(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """The one real download of the session: every pinned wheel, into a fresh directory."""
    store = ModelStore(tmp_path_factory.mktemp("pulled-models"))
    store.pull()
    return store


def _copy_store(src: ModelStore, dst: Path) -> ModelStore:
    dst.mkdir(parents=True, exist_ok=True)
    for spec in MODELS.values():
        shutil.copyfile(src.root / spec.filename, dst / spec.filename)
    return ModelStore(dst)


def _flip_byte(path: Path, offset: int = 1000) -> None:
    with path.open("r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_pull_fetches_every_pinned_model_verified(pulled: ModelStore) -> None:
    entries = {e.name: e for e in pulled.entries()}
    assert set(entries) == {"centerface", "plate_yolov8_pt", "text_det", "text_rec"}
    assert all(e.status == "ok" for e in entries.values())
    assert entries["centerface"].license == "MIT"
    assert entries["plate_yolov8_pt"].license == "Apache-2.0"
    assert entries["text_det"].license == entries["text_rec"].license == "Apache-2.0"
    assert entries["text_det"].package == "rapidocr-onnxruntime"
    assert pulled.path("centerface") == pulled.root / "centerface.onnx"
    assert not list(pulled.root.glob("*.part")), "no temporary files may be left behind"
    assert not list(pulled.root.glob(".download-*"))


def test_pull_skips_models_already_valid(pulled: ModelStore) -> None:
    before = {p: p.stat().st_mtime_ns for p in (pulled.root / s.filename for s in MODELS.values())}
    pulled.pull()
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_missing_model_names_the_fix(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    assert {e.status for e in store.entries()} == {"missing"}
    with pytest.raises(ModelMissing, match="run `veil models pull`"):
        store.path("centerface")


def test_corrupt_model_names_the_fix_even_after_a_good_check(pulled: ModelStore, tmp_path: Path) -> None:
    store = _copy_store(pulled, tmp_path)
    assert store.path("centerface").is_file()  # verified once, now cached
    _flip_byte(store.root / "centerface.onnx")
    with pytest.raises(ModelCorrupt, match="run `veil models pull`"):
        store.path("centerface")
    assert {e.name: e.status for e in store.entries()}["centerface"] == "corrupt"


def test_unknown_model_is_refused(pulled: ModelStore) -> None:
    with pytest.raises(ModelMissing, match="known models: centerface"):
        pulled.pull(["no_such_model"])


def test_export_import_round_trip_carries_custom_models(pulled: ModelStore, tmp_path: Path) -> None:
    source = _copy_store(pulled, (tmp_path / "site-a").resolve())
    (source.root / "custom").mkdir()
    (source.root / "custom" / "logo.onnx").write_bytes(b"custom model bytes")
    bundle = tmp_path / "usb"
    source.export_to(bundle)
    assert (bundle / "manifest.json").is_file()

    target = ModelStore(tmp_path / "site-b")
    target.import_from(bundle)
    assert [e.status for e in target.entries()] == ["ok"] * len(MODELS)
    assert (bundle / "ch_PP-OCRv4_det_infer.onnx").is_file(), "the text models travel across the air gap"
    assert (target.root / "custom" / "logo.onnx").read_bytes() == b"custom model bytes"


def test_import_refuses_a_tampered_file_and_installs_nothing(pulled: ModelStore, tmp_path: Path) -> None:
    bundle = tmp_path / "usb"
    pulled.export_to(bundle)
    _flip_byte(bundle / "plate_yolov8.pt")

    target = ModelStore(tmp_path / "site-b")
    with pytest.raises(ModelCorrupt, match="nothing was imported"):
        target.import_from(bundle)
    assert {e.status for e in target.entries()} == {"missing"}


def test_import_repairs_a_corrupt_cache(pulled: ModelStore, tmp_path: Path) -> None:
    store = _copy_store(pulled, tmp_path / "cache")
    _flip_byte(store.root / "centerface.onnx")
    store.import_from(pulled.root)
    assert store.path("centerface").is_file()


def test_two_models_from_one_wheel_are_fetched_with_one_download(
    pulled: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """text_det and text_rec both come from rapidocr-onnxruntime's wheel: pip runs once for both."""
    import subprocess

    wheel_dir = tmp_path / "wheels"
    real_run = subprocess.run
    calls: list[list[str]] = []

    def counting_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return real_run(cmd, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(subprocess, "run", counting_run)
    store = ModelStore(wheel_dir)
    store.pull(["text_det", "text_rec"])
    assert len(calls) == 1
    assert store.status("text_det") == store.status("text_rec") == "ok"


def test_export_of_an_incomplete_cache_says_to_pull(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="run `veil models pull`"):
        ModelStore(tmp_path / "empty").export_to(tmp_path / "usb")
