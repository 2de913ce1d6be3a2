"""Read an ultralytics YOLOv8 ``.pt`` checkpoint without torch or ultralytics.

A ``.pt`` file is a zip archive: ``<prefix>/data.pkl`` is a pickle of the
checkpoint dict and ``<prefix>/data/<key>`` hold the raw tensor storages.
Unpickling it with the standard ``pickle.load`` would run whatever callable the
file names, so a downloaded or user-supplied model could execute code. Here
the unpickler resolves only an explicit allow-list of globals, each to an inert
stand-in:

* torch / ultralytics module classes become :class:`TorchModule` holders that
  keep ``_parameters``, ``_buffers``, ``_modules`` and plain attributes;
* ``torch._utils._rebuild_tensor_v2`` (and ``_rebuild_parameter``) rebuild
  tensors as NumPy arrays straight from the storage files, bounds-checked;
* configuration objects (omegaconf, namespaces, numpy scalars) become opaque
  holders, since conversion never needs them.

Any other global (``os.system``, ``builtins.eval``, ``subprocess.Popen``, an
unknown class) raises :class:`veil.errors.UnsafeModelFile` naming it, before
anything it names is imported or called.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from veil.errors import ModelCorrupt, UnsafeModelFile

__all__ = ["Checkpoint", "TorchModule", "load_checkpoint"]

_MAX_PICKLE_BYTES = 256 * 1024 * 1024
_MAX_STORAGE_BYTES = 2 * 1024 * 1024 * 1024
"""Per storage and in total: the largest YOLOv8 checkpoints are a few hundred MB."""
_STORAGE_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class TorchModule:
    """Inert stand-in for one ``nn.Module``: its tensors and plain attributes.

    ``type_name`` is the short class name (``Conv2d``, ``C2f``, ``Detect``...);
    the converter dispatches on it. Instances are only ever created by the
    unpickler through ``__new__`` plus ``__setstate__`` (pickle BUILD).
    """

    type_name: ClassVar[str] = "Module"
    qualified_name: ClassVar[str] = "torch.nn.Module"

    def __init__(self, *args: object, **kwargs: object) -> None:
        # Reached only if a pickle REDUCEs the class itself; arguments are ignored.
        self.__setstate__({})

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = state[0]
        if not isinstance(state, dict):
            raise ModelCorrupt(f"checkpoint module {self.type_name} has an unexpected state layout")
        self.parameters: dict[str, npt.NDArray[Any] | None] = dict(state.get("_parameters") or {})
        self.buffers: dict[str, npt.NDArray[Any] | None] = dict(state.get("_buffers") or {})
        self.children: dict[str, TorchModule] = dict(state.get("_modules") or {})
        self.attrs: dict[str, object] = {k: v for k, v in state.items() if not k.startswith("_")}

    def child(self, name: str) -> TorchModule:
        """The named submodule, or ModelCorrupt if the checkpoint lacks it."""
        found = self.__dict__.get("children", {}).get(name)
        if not isinstance(found, TorchModule):
            raise ModelCorrupt(f"checkpoint module {self.type_name} has no submodule {name!r}")
        return found

    def tensor(self, name: str) -> npt.NDArray[Any] | None:
        """A parameter or buffer as a NumPy array (``None`` if declared but unset)."""
        for table in (self.__dict__.get("parameters", {}), self.__dict__.get("buffers", {})):
            if name in table:
                value = table[name]
                if value is not None and not (isinstance(value, np.ndarray) and value.dtype.kind in "fiub"):
                    raise ModelCorrupt(f"checkpoint tensor {self.type_name}.{name} is not a tensor")
                return value
        return None

    def attr(self, name: str, default: object = None) -> object:
        return self.__dict__.get("attrs", {}).get(name, default)

    def __repr__(self) -> str:
        return f"<TorchModule {self.type_name}>"


class _Opaque:
    """Inert stand-in for configuration objects the converter never reads."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


class _Storage:
    """One raw tensor storage, read lazily from the zip as a flat NumPy array."""

    def __init__(self, array: npt.NDArray[Any]) -> None:
        self.array = array


class _Frozen:
    """Base of every object ``find_class`` hands out that outlives one load.

    pickle's BUILD opcode calls ``__setstate__`` on whatever is on the stack; a
    hostile file could otherwise use it to rewrite these shared objects.
    """

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise ModelCorrupt("checkpoint pickle tries to modify a built-in object")


class _StorageType(_Frozen):
    """What ``torch.FloatStorage`` and friends resolve to: just a dtype."""

    __slots__ = ("bfloat16", "dtype", "name")

    def __init__(self, name: str, dtype: np.dtype[Any], bfloat16: bool = False) -> None:
        self.name = name
        self.dtype = dtype
        self.bfloat16 = bfloat16


class _Fn(_Frozen):
    """A plain function exposed to the pickle, guarded against BUILD."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[..., object]) -> None:
        self._fn = fn

    def __call__(self, *args: object) -> object:
        return self._fn(*args)


_STORAGE_TYPES: dict[str, _StorageType] = {
    name: _StorageType(name, np.dtype(dt), name == "BFloat16Storage")
    for name, dt in {
        "HalfStorage": "<f2",
        "FloatStorage": "<f4",
        "DoubleStorage": "<f8",
        "BFloat16Storage": "<u2",
        "LongStorage": "<i8",
        "IntStorage": "<i4",
        "ShortStorage": "<i2",
        "CharStorage": "i1",
        "ByteStorage": "u1",
        "BoolStorage": "?",
    }.items()
}

_TORCH_DTYPES = frozenset(
    {"float16", "half", "float32", "float", "float64", "bfloat16", "int64", "long", "int32", "uint8", "bool"}
)
"""torch dtype globals; the converter never needs their value, so they resolve to an opaque holder."""

_TORCH_MODULES = {
    "torch.nn.modules.conv": ("Conv2d",),
    "torch.nn.modules.batchnorm": ("BatchNorm2d",),
    "torch.nn.modules.activation": ("SiLU", "ReLU", "LeakyReLU", "Hardswish"),
    "torch.nn.modules.linear": ("Identity",),
    "torch.nn.modules.pooling": ("MaxPool2d",),
    "torch.nn.modules.upsampling": ("Upsample",),
    "torch.nn.modules.container": ("Sequential", "ModuleList"),
}
_ULTRALYTICS_MODULE_PATHS = (
    "ultralytics.nn.modules",
    "ultralytics.nn.modules.conv",
    "ultralytics.nn.modules.block",
    "ultralytics.nn.modules.head",
)
_ULTRALYTICS_CLASSES = ("Conv", "C2f", "Bottleneck", "SPPF", "Concat", "Detect", "DFL")

_OPAQUE = {
    ("omegaconf.dictconfig", "DictConfig"),
    ("omegaconf.listconfig", "ListConfig"),
    ("omegaconf.base", "ContainerMetadata"),
    ("omegaconf.base", "Metadata"),
    ("omegaconf.nodes", "AnyNode"),
    ("omegaconf.nodes", "StringNode"),
    ("omegaconf.nodes", "IntegerNode"),
    ("omegaconf.nodes", "FloatNode"),
    ("omegaconf.nodes", "BooleanNode"),
    ("typing", "Any"),
    ("types", "SimpleNamespace"),
    ("argparse", "Namespace"),
    ("ultralytics.utils", "IterableSimpleNamespace"),
    ("ultralytics.yolo.utils", "IterableSimpleNamespace"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("datetime", "datetime"),
}

_SAFE_BUILTINS: dict[str, Callable[..., object]] = {
    "dict": dict,
    "list": list,
    "set": set,
    "frozenset": frozenset,
    "tuple": tuple,
    "bool": bool,
    "int": int,
    "float": float,
    "complex": complex,
    "str": str,
}


def _module_class(module: str, name: str) -> type[TorchModule]:
    return type(name, (TorchModule,), {"type_name": name, "qualified_name": f"{module}.{name}"})


def _path_parts(*parts: object) -> str:
    """``pathlib.PosixPath`` stand-in: the path as a string, never touching the file system."""
    return "/".join(str(p) for p in parts)


def _torch_size(dims: object = ()) -> tuple[int, ...]:
    if not isinstance(dims, tuple | list) or not all(isinstance(d, int) for d in dims):
        raise ModelCorrupt("checkpoint holds a malformed tensor size")
    return tuple(dims)


def _defaultdict(*args: object) -> dict[object, object]:
    return {}


def _rebuild_tensor_v2(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> npt.NDArray[Any]:
    """torch._utils._rebuild_tensor_v2 semantics on a NumPy storage, with bounds checks."""
    if not isinstance(storage, _Storage):
        raise ModelCorrupt("checkpoint tensor does not refer to a storage")
    if not isinstance(storage_offset, int) or not isinstance(size, tuple) or not isinstance(stride, tuple):
        raise ModelCorrupt("checkpoint tensor has a malformed offset, size or stride")
    if len(size) != len(stride) or not all(isinstance(v, int) and v >= 0 for v in (*size, *stride)):
        raise ModelCorrupt("checkpoint tensor has a malformed offset, size or stride")
    flat = storage.array
    if any(s == 0 for s in size):
        return np.zeros(size, dtype=flat.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if storage_offset < 0 or last >= flat.shape[0]:
        raise ModelCorrupt("checkpoint tensor reaches past the end of its storage")
    view = np.lib.stride_tricks.as_strided(
        flat[storage_offset:],
        shape=size,
        strides=tuple(s * flat.dtype.itemsize for s in stride),
        writeable=False,
    )
    return np.array(view, copy=True)


def _rebuild_parameter(data: object, requires_grad: object = False, backward_hooks: object = None) -> object:
    return data


def _rebuild_parameter_with_state(
    data: object, requires_grad: object = False, backward_hooks: object = None, state: object = None
) -> object:
    return data


_FN_TORCH_SIZE = _Fn(_torch_size)
_FN_DEFAULTDICT = _Fn(_defaultdict)
_FN_PATH = _Fn(_path_parts)
_FN_TORCH_UTILS = {
    "_rebuild_tensor_v2": _Fn(_rebuild_tensor_v2),
    "_rebuild_parameter": _Fn(_rebuild_parameter),
    "_rebuild_parameter_with_state": _Fn(_rebuild_parameter_with_state),
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the allow-listed globals; storages come from the zip by key."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, byteorder: str) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._byteorder = byteorder
        self._storages: dict[str, _Storage] = {}
        self._storage_bytes = 0
        self._classes: dict[tuple[str, str], type[TorchModule]] = {}

    def find_class(self, module: str, name: str) -> Any:  # noqa: ANN401 - pickle's own signature
        key = (module, name)
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if key == ("collections", "OrderedDict"):
            return OrderedDict
        if key == ("collections", "defaultdict"):
            return _FN_DEFAULTDICT
        if module == "pathlib" and name in ("PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath"):
            return _FN_PATH
        if module == "torch":
            if name in _STORAGE_TYPES:
                return _STORAGE_TYPES[name]
            if name in _TORCH_DTYPES:
                return _Opaque
            if name == "Size":
                return _FN_TORCH_SIZE
        if module == "torch._utils":
            if name in _FN_TORCH_UTILS:
                return _FN_TORCH_UTILS[name]
        if name in _TORCH_MODULES.get(module, ()) or (
            (module in _ULTRALYTICS_MODULE_PATHS and name in _ULTRALYTICS_CLASSES)
            or key == ("ultralytics.nn.tasks", "DetectionModel")
        ):
            if key not in self._classes:
                self._classes[key] = _module_class(module, name)
            return self._classes[key]
        if key in _OPAQUE:
            return _Opaque
        raise UnsafeModelFile(
            f"refused to load the model: its pickle names the global '{module}.{name}', "
            "which is not a known YOLOv8 checkpoint class"
        )

    def persistent_load(self, pid: Any) -> _Storage:  # noqa: ANN401 - pickle's own signature
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise ModelCorrupt("checkpoint has a malformed storage reference")
        _, storage_type, key, _location, numel = pid
        if (
            not isinstance(storage_type, _StorageType)
            or not isinstance(key, str)
            or not isinstance(numel, int)
        ):
            raise ModelCorrupt("checkpoint has a malformed storage reference")
        if not _STORAGE_KEY.match(key):
            raise ModelCorrupt("checkpoint has a malformed storage key")
        if key not in self._storages:
            self._storages[key] = self._read_storage(storage_type, key, numel)
        return self._storages[key]

    def _read_storage(self, storage_type: _StorageType, key: str, numel: int) -> _Storage:
        member = f"{self._prefix}data/{key}"
        try:
            info = self._archive.getinfo(member)
        except KeyError as exc:
            raise ModelCorrupt("checkpoint refers to a tensor storage it does not contain") from exc
        self._storage_bytes += info.file_size
        if self._storage_bytes > _MAX_STORAGE_BYTES:
            raise ModelCorrupt("checkpoint tensor storages are implausibly large")
        dtype = storage_type.dtype.newbyteorder("<" if self._byteorder == "little" else ">")
        if dtype.itemsize == 1:
            dtype = storage_type.dtype
        raw = self._archive.read(member)
        if numel < 0 or len(raw) < numel * dtype.itemsize:
            raise ModelCorrupt("checkpoint tensor storage is shorter than declared")
        array = np.frombuffer(raw, dtype=dtype, count=numel)
        if storage_type.bfloat16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return _Storage(array.astype(array.dtype.newbyteorder("="), copy=False))


@dataclass(frozen=True)
class Checkpoint:
    """What the converter needs from a YOLOv8 detection checkpoint."""

    model: TorchModule
    """The ``DetectionModel`` (the EMA weights when present, as ultralytics loads them)."""
    layers: tuple[TorchModule, ...]
    """``model.model``: the layers in order, each with ``f`` (inputs) and ``i`` (index) attributes."""
    names: dict[int, str]
    nc: int
    stride: tuple[float, ...]
    imgsz: int
    """Training image size (640 unless the checkpoint says otherwise)."""
    yaml: dict[str, object]


def _open_archive(path: Path) -> tuple[zipfile.ZipFile, str]:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelCorrupt("the model file is not a zip-format PyTorch checkpoint") from exc
    pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") <= 1]
    if len(pickles) != 1:
        archive.close()
        raise ModelCorrupt("the model file does not hold exactly one data.pkl")
    return archive, pickles[0][: -len("data.pkl")]


def _load_raw(path: Path) -> object:
    archive, prefix = _open_archive(path)
    with archive:
        info = archive.getinfo(prefix + "data.pkl")
        if info.file_size > _MAX_PICKLE_BYTES:
            raise ModelCorrupt("the checkpoint pickle is implausibly large")
        byteorder = "little"
        if prefix + "byteorder" in archive.namelist():
            byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
        unpickler = _RestrictedUnpickler(archive.read(info), archive, prefix, byteorder)
        try:
            return unpickler.load()
        except (UnsafeModelFile, ModelCorrupt):
            raise
        except Exception as exc:  # any malformed pickle: EOFError, UnpicklingError, TypeError...
            raise ModelCorrupt("the checkpoint pickle could not be read") from exc


def _names(raw: object, nc: int) -> dict[int, str]:
    if isinstance(raw, dict):
        names = {int(k): str(v) for k, v in raw.items() if isinstance(k, int | str) and str(k).isdigit()}
    elif isinstance(raw, list | tuple):
        names = {i: str(v) for i, v in enumerate(raw)}
    else:
        names = {}
    return {i: names.get(i, f"class{i}") for i in range(nc)}


def load_checkpoint(path: Path) -> Checkpoint:
    """Safely read a YOLOv8 detection checkpoint.

    Raises ``UnsafeModelFile`` if the pickle names any global outside the
    allow-list, and ``ModelCorrupt`` if the file is not a readable YOLOv8
    detection checkpoint.
    """
    raw = _load_raw(path)
    if not isinstance(raw, dict):
        raise ModelCorrupt("the checkpoint is not a dict")
    model = raw.get("ema") or raw.get("model")
    if not isinstance(model, TorchModule) or model.type_name != "DetectionModel":
        raise ModelCorrupt("the checkpoint holds no YOLOv8 DetectionModel")
    sequential = model.child("model")
    layers = tuple(sequential.children[k] for k in sorted(sequential.children, key=int))
    if not layers or layers[-1].type_name != "Detect":
        raise ModelCorrupt("the checkpoint model does not end in a Detect head")
    head = layers[-1]
    nc = head.attr("nc")
    if not isinstance(nc, int) or not 1 <= nc <= 10_000:
        raise ModelCorrupt("the checkpoint Detect head has no valid class count")
    stride_t = head.attr("stride")
    if not isinstance(stride_t, np.ndarray):
        stride_t = model.attr("stride")
    if not isinstance(stride_t, np.ndarray) or stride_t.size < 1:
        raise ModelCorrupt("the checkpoint holds no Detect strides")
    train_args = raw.get("train_args")
    imgsz = train_args.get("imgsz", 640) if isinstance(train_args, dict) else 640
    yaml = model.attr("yaml")
    return Checkpoint(
        model=model,
        layers=layers,
        names=_names(model.attr("names"), nc),
        nc=nc,
        stride=tuple(float(s) for s in stride_t.astype(np.float32).reshape(-1)),
        imgsz=imgsz if isinstance(imgsz, int) and 32 <= imgsz <= 4096 else 640,
        yaml=yaml if isinstance(yaml, dict) else {},
    )
