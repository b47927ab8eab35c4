"""The memory contract with the native kernel: ctypes mirrors of its argument structs and its buffer layout.

``Args`` and ``ResetArgs`` mirror ``struct Args`` and ``struct ResetArgs`` of ``native_step.cpp`` field for field
(every field 8 bytes wide; ``load_kernel`` checks the sizes agree). Buffers the kernel reads or writes are
(rows, N) float32 views with the padded row stride of :func:`padded_stride`.
"""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor

MAX_SLOTS, MAX_DUE, SENSED = 8, 4, 18  # delay-line slots, interval groups, sensed observation rows

_INT_FIELDS = (
    "n stride pstride num_threads substeps act_slots obs_slots n_due max_len table_rows counter env_stride step_stride "
    "row_mass "
    "row_jx row_jy row_jz row_kf row_km row_tau_up row_tau_down row_dx row_dy row_dz row_max_rpm row_act_lat "
    "row_obs_lat row_noise_scale row_fx row_fy row_fz row_tx row_ty row_tz "
    "row_ks1 row_ks2 row_ks3 row_ks4 row_ts1 row_ts2 row_ts3 row_ts4 row_curve row_sag row_ground row_comx row_comy "
    "row_sub_lat"
).split()
_DOUBLE_FIELDS = [
    *"dt arm gravity control_dt ref_height nominal_max_rpm".split(),
    ("offset", 4),
    ("scale", 4),
    ("low", 4),
    *"w_alive w_pos w_vel w_ang w_tilt w_act w_rate w_term lim_pos lim_speed lim_rate floor".split(),
    ("policy_scale", SENSED + 4 + 3),
    ("critic_scale", SENSED),
]
_PTR_FIELDS = [
    "state",
    "params",
    "actions",
    ("act_slot", MAX_SLOTS),
    "act_new",
    "act_prev",
    ("obs_slot", MAX_SLOTS),
    "obs_new",
    "ep_len",
    "ep_return",
    "reward",
    "terminated",
    "timeout",
    "done",
    ("due", MAX_DUE),
    "obs_out",
    "noise_table",
]

# In-pass resets (quad_step with reset_inline): the reset pool, the buffers a reset rewrites, and what it reports.
_RESET_INT_FIELDS = "reset_inline pool_next pool_left pool_pstride pool_sstride nprow n_act_buf npriv".split()
_RESET_PTR_FIELDS = [
    "pool_params",
    "pool_state",
    "prow",
    ("act_buf", MAX_SLOTS),
    *"priv priv_row priv_div priv_mul chunk_count counts done_ids done_return done_len done_term".split(),
]


def _fields() -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [(f, ctypes.c_int64) for f in _INT_FIELDS]
    out += [("row_std", ctypes.c_int64 * SENSED), ("due_period", ctypes.c_int64 * MAX_DUE)]
    for f in _DOUBLE_FIELDS:
        out.append((f[0], ctypes.c_double * f[1]) if isinstance(f, tuple) else (f, ctypes.c_double))
    for f in _PTR_FIELDS:
        out.append((f[0], ctypes.c_void_p * f[1]) if isinstance(f, tuple) else (f, ctypes.c_void_p))
    out += [("n_integral", ctypes.c_int64), ("integral_limit", ctypes.c_double)]
    out += [("integral_prev", ctypes.c_void_p), ("integral_new", ctypes.c_void_p)]
    out += [(f, ctypes.c_int64) for f in _RESET_INT_FIELDS]
    for f in _RESET_PTR_FIELDS:
        out.append((f[0], ctypes.c_void_p * f[1]) if isinstance(f, tuple) else (f, ctypes.c_void_p))
    history = [("critic_out", ctypes.c_void_p), ("n_hist", ctypes.c_int64)]
    timers = [("pass_seconds", ctypes.c_void_p)]
    return [*out, *history, ("obs_mirror", ctypes.c_void_p), ("prev_done", ctypes.c_void_p), *timers]


class Args(ctypes.Structure):
    """ctypes mirror of ``struct Args`` in native_step.cpp (every field 8 bytes wide)."""

    _fields_ = _fields()


class ResetArgs(ctypes.Structure):
    """ctypes mirror of ``struct ResetArgs`` in native_step.cpp."""

    _fields_ = [
        *[(f, ctypes.c_int64) for f in ("count", "nprow", "pv_stride", "sv_stride", "nact")],
        *[(f, ctypes.c_void_p) for f in ("ids", "prow", "pvals", "svals")],
        ("act", ctypes.c_void_p * MAX_SLOTS),
        ("priv", ctypes.c_void_p),
        ("npriv", ctypes.c_int64),
        *[(f, ctypes.c_void_p) for f in ("priv_row", "priv_div", "priv_mul")],
    ]


def _ptr(t: Tensor) -> int:
    return t.data_ptr()


def padded_stride(n: int) -> int:
    """Row stride (elements) for (rows, n) buffers: n rounded up to 16, plus 16. With a stride of n itself, rows of
    a 65536-env buffer lie 256 KiB apart and all map to the same L1/L2 cache set (measured 6x slower)."""
    return (n + 15) // 16 * 16 + 16


def padded_empty(rows: int, n: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """(rows, n) view with row stride :func:`padded_stride` (n)."""
    return torch.empty(rows, padded_stride(n), dtype=dtype)[:, :n]
