"""Reading YOLOv8 checkpoints without torch, and refusing hostile ones."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from veil.detect.yolov8.checkpoint import load_checkpoint
from veil.errors import ModelCorrupt, UnsafeModelFile


def test_reads_the_plate_checkpoint_without_torch(plate_pt: Path) -> None:
    ckpt = load_checkpoint(plate_pt)
    assert ckpt.nc == 1
    assert ckpt.names == {0: "License_Plate"}
    assert ckpt.stride == (8.0, 16.0, 32.0)
    assert ckpt.imgsz == 640
    kinds = [layer.type_name for layer in ckpt.layers]
    assert (
        kinds[0] == "Conv" and kinds[-1] == "Detect" and {"C2f", "SPPF", "Upsample", "Concat"} <= set(kinds)
    )
    first = ckpt.layers[0].child("conv").tensor("weight")
    assert first is not None and first.shape == (16, 3, 3, 3) and first.dtype == np.float16
    assert np.isfinite(first).all() and np.abs(first).max() > 0
    bn = ckpt.layers[0].child("bn")
    var = bn.tensor("running_var")
    assert var is not None and (var > 0).all()


@pytest.mark.parametrize(
    "name",
    [
        "os.system",
        "posix.system",
        "builtins.eval",
        "subprocess.Popen",
        "nested os.system",
        "unknown class",
        "unknown ultralytics class",
    ],
)
def test_hostile_pickle_is_refused_before_it_runs(
    name: str,
    hostile_pickles: dict[str, bytes],
    hostile_pt: Callable[[bytes], Path],
    payload_marker: Path,
) -> None:
    path = hostile_pt(hostile_pickles[name])
    with pytest.raises(UnsafeModelFile) as info:
        load_checkpoint(path)
    refused = {"nested os.system": "os.system", "unknown class": "evilpkg.payload.Gadget"}.get(name, name)
    if name == "unknown ultralytics class":
        refused = "ultralytics.nn.modules.SegmentEvil"
    assert refused in str(info.value)
    assert info.value.code == "unsafe_model"
    assert not payload_marker.exists()


def test_the_os_system_payload_is_real(hostile_pickles: dict[str, bytes], payload_marker: Path) -> None:
    """Guards the test above: the same bytes do create the marker when unpickled naively."""
    pickle.loads(hostile_pickles["os.system"])  # noqa: S301 - deliberately unsafe, in a test
    assert payload_marker.exists()


def test_pickle_may_not_rewrite_allow_listed_objects(
    hostile_pt: Callable[[bytes], Path], plate_pt: Path
) -> None:
    # BUILD on the torch.FloatStorage stand-in would otherwise change how every later file is read.
    path = hostile_pt(b"\x80\x02ctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeNsb.")
    with pytest.raises(ModelCorrupt):
        load_checkpoint(path)
    assert load_checkpoint(plate_pt).nc == 1


@pytest.mark.parametrize(
    "content",
    [b"not a zip at all", b"PK\x03\x04 truncated"],
)
def test_non_checkpoint_files_are_reported_corrupt(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(ModelCorrupt):
        load_checkpoint(path)


def test_tensor_reaching_past_its_storage_is_refused(hostile_pt: Callable[[bytes], Path]) -> None:
    # _rebuild_tensor_v2(storage '0' of 4 floats, offset 0, size (1000,), stride (1,)): reads past the end.
    data = (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n"
        b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04t"
        b"Q"  # BINPERSID
        b"K\x00M\xe8\x03\x85K\x01\x85\x89NtR."
    )
    path = hostile_pt(data)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("archive/data/0", np.zeros(4, np.float32).tobytes())
    with pytest.raises(ModelCorrupt, match="past the end"):
        load_checkpoint(path)
