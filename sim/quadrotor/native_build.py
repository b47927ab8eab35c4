"""Build and load the native quadrotor kernel (``native_step.cpp``).

The shared library is built once per (source, compiler flags, CPU) with the system ``g++`` into
``$SIM2REAL_CACHE`` or ``~/.cache/sim2real/native`` (about 3 s) and loaded with ctypes (no torch headers, no ninja);
one library per block width (``load_kernel(width=8)`` gives the AVX2 build on an AVX-512 machine, to compare).
If it cannot be built, :func:`load_kernel` logs a warning and returns None, and the env runs the torch path.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from sim.quadrotor.native_args import Args, ResetArgs

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("native_step.cpp")
FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-fopenmp")
_lock = threading.Lock()
_kernels: dict[int, ctypes.CDLL | None] = {}  # by width; None: the build or load failed (tried once)
WIDTHS = (8, 16)  # envs per vector block: 8 (AVX2), 16 (AVX-512F)


def cache_dir() -> Path:
    root = os.environ.get("SIM2REAL_CACHE")
    return Path(root) / "native" if root else Path.home() / ".cache" / "sim2real" / "native"


def _cpu_tag() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") or line.startswith("flags"):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def widest() -> int:
    """The widest block the CPU supports: 16 envs with AVX-512F (read from /proc/cpuinfo once), else 8."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return 16 if "avx512f" in line.split() else 8
    except OSError:
        pass
    return 8


def build_flags(width: int) -> tuple[str, ...]:
    """g++ flags of the kernel with ``width`` envs per block."""
    return (*FLAGS, f"-DSIM2REAL_KERNEL_WIDTH={width}")


def _build(out: Path, flags: tuple[str, ...]) -> None:
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX or install g++)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        tmp_lib = Path(tmp) / out.name
        proc = subprocess.run(
            [compiler, *flags, str(SOURCE), "-o", str(tmp_lib)], capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{compiler} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        os.replace(tmp_lib, out)  # atomic: concurrent builders (pytest-xdist, several runs) never see a partial file


def load_kernel(width: int | None = None) -> ctypes.CDLL | None:
    """The compiled kernel with ``width`` envs per block (8 or 16; None: :func:`widest`), built on first use and
    cached, or None with a logged warning if it cannot be built. Both widths compute bit-identical results."""
    width = widest() if width is None else width
    if width not in WIDTHS:
        raise ValueError(f"kernel width must be one of {WIDTHS} envs per block, got {width}")
    with _lock:
        if width in _kernels:
            return _kernels[width]
        flags = build_flags(width)
        key = hashlib.sha256(SOURCE.read_bytes() + " ".join(flags).encode() + _cpu_tag().encode()).hexdigest()[:16]
        path = cache_dir() / f"quad_step_w{width}_{key}.so"
        try:
            if not path.exists():
                log.info("building the native quadrotor kernel (%d envs per block) into %s", width, path)
                _build(path, flags)
            lib = ctypes.CDLL(str(path))
            if lib.quad_args_size() != ctypes.sizeof(Args):
                raise RuntimeError(f"struct size mismatch: C++ {lib.quad_args_size()} vs ctypes {ctypes.sizeof(Args)}")
            if lib.quad_width() != width:
                raise RuntimeError(f"built {lib.quad_width()} envs per block, asked for {width}")
            lib.quad_step.argtypes = [ctypes.POINTER(Args)]
            lib.quad_observe.argtypes = [ctypes.POINTER(Args), ctypes.c_void_p, ctypes.c_int64]
            lib.quad_reset.argtypes = [ctypes.POINTER(Args), ctypes.POINTER(ResetArgs)]
            lib.quad_reset_done.argtypes = [ctypes.POINTER(Args)]
            lib.quad_copy_rows.argtypes = [ctypes.c_void_p, ctypes.c_void_p, *[ctypes.c_int64] * 4]
            _kernels[width] = lib
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            log.warning(
                "the native quadrotor kernel could not be built or loaded (%s); falling back to the torch step, "
                "which is several times slower on CPU. Install g++ (or set CXX) to get the fast path.",
                exc,
            )
            _kernels[width] = None
        return _kernels[width]
