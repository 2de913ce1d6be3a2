"""The only place that builds onnxruntime sessions and picks providers.

CPU is the default. A GPU site sets ``VEIL_PROVIDERS=CUDAExecutionProvider,CPUExecutionProvider``
(with ``onnxruntime-gpu`` installed); providers that this onnxruntime build
lacks are skipped, and CPU always remains as the last resort.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass, field
from pathlib import Path

import onnxruntime as ort

from veil.errors import ModelCorrupt
from veil.settings import Settings

__all__ = ["RuntimeOptions", "cpu_runs_int8_exactly", "create_session"]


@dataclass(frozen=True)
class RuntimeOptions:
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    intra_op_threads: int = 0
    """0 lets onnxruntime use every core."""
    extra: dict[str, str] = field(default_factory=dict)
    int8: bool = False
    """Prefer INT8 models where one exists (CenterFace, plates). Only honoured on the CPU provider,
    and only on a CPU that runs them exactly (``cpu_runs_int8_exactly``)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> RuntimeOptions:
        """The onnxruntime options every detector of this process is built with (``VEIL_PROVIDERS`` etc.)."""
        threads = settings.intra_op_threads
        return cls(providers=tuple(settings.providers), intra_op_threads=threads, int8=settings.int8)

    @property
    def use_int8(self) -> bool:
        """INT8 models pay off on CPUs; a GPU provider runs the fp32 model (QDQ graphs are slow there),
        and so does an x86 CPU without VNNI, where INT8 costs recall."""
        on_cpu = _usable_providers(self.providers)[0] == "CPUExecutionProvider"
        return self.int8 and on_cpu and cpu_runs_int8_exactly()


@functools.cache
def cpu_runs_int8_exactly() -> bool:
    """Whether this CPU computes onnxruntime's u8s8 convolutions without saturating.

    x86 CPUs without VNNI multiply uint8 activations by int8 weights with ``pmaddubsw``, whose
    16-bit sums saturate: measured on an AVX2-only EPYC, the INT8 CenterFace found 620 of
    faces-dev's 685 faces where the fp32 model finds 632 and the same INT8 model on a VNNI CPU 634.
    VNNI (AVX-512 or AVX) and ARM's dot-product instructions accumulate in 32 bits.
    """
    if platform.machine().lower() not in {"x86_64", "amd64", "i386", "i686"}:
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").split()
    except OSError:
        return False
    return not {"avx512_vnni", "avx_vnni", "amx_int8"}.isdisjoint(flags)


def _usable_providers(wanted: tuple[str, ...]) -> list[str]:
    available = set(ort.get_available_providers())
    chosen = [p for p in wanted if p in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def create_session(model: Path | bytes, *, options: RuntimeOptions) -> ort.InferenceSession:
    """Build a session for ``model`` (a path or serialized ONNX bytes)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # Busy-waiting worker threads burn the cores that decoding and x264 need in the same process;
    # measured on CenterFace at 960 px with 2 threads: 0.30 s CPU/frame without spinning, 0.41 s with.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, sess_options=so, providers=_usable_providers(options.providers))
    except Exception as exc:  # onnxruntime raises bare Fail/InvalidProtobuf types
        message = "the model file could not be loaded; run `veil models pull` to restore it"
        raise ModelCorrupt(message) from exc
