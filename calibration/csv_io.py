"""Reading measurement CSV files by column name (header row, SI units)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from calibration.errors import CalibrationFileError


def read_csv_columns(
    path: Path, required: Sequence[str], optional: Sequence[str] = (), what: str = "CSV"
) -> dict[str, np.ndarray]:
    """Columns ``required`` (and those of ``optional`` that are present) of a CSV with a header row.

    Header names are matched case-insensitively; a missing required column is a CalibrationFileError naming it.
    """
    if not path.is_file():
        raise CalibrationFileError(
            f"{what} file {str(path)!r} does not exist; expected a CSV with columns {list(required)}"
        )
    with path.open() as f:
        header = [h.strip().lower() for h in f.readline().strip().split(",")]
    missing = [c for c in required if c not in header]
    if missing:
        extra = f" [, {', '.join(optional)}]" if optional else ""
        raise CalibrationFileError(
            f"{path}: CSV header lacks columns {missing}; expected {', '.join(required)}{extra} (SI units)"
        )
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return {name: data[:, header.index(name)] for name in (*required, *optional) if name in header}
