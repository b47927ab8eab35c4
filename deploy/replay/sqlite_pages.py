"""Recover the rows of rosbag2's ``messages`` table from the pages of a damaged sqlite3 file.

A truncated ``.db3`` cannot be queried once a B-tree page on the path to the first rows lies past the end of
the file, although most leaf pages holding the rows are intact. This reader walks every page of the file,
keeps the table-leaf pages (type 0x0D) and decodes the cells whose record has the shape of a rosbag2 message
row: (id INTEGER PRIMARY KEY, topic_id INTEGER, timestamp INTEGER, data BLOB). Overflow chains are followed
while their pages exist. Format: https://www.sqlite.org/fileformat.html (sections 1.3, 1.6, 2.1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageRow:
    row_id: int
    topic_id: int
    timestamp: int
    data: bytes
    page: int  # 1-based page number where the cell lives


def _varint(b: bytes, i: int) -> tuple[int, int]:
    value = 0
    for k in range(9):
        byte = b[i + k]
        if k == 8:
            return (value << 8) | byte, i + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, i + k + 1
    raise ValueError("bad varint")


_INT_SIZES = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}


def _record(payload: bytes) -> list[object] | None:
    header_size, i = _varint(payload, 0)
    types = []
    while i < header_size:
        t, i = _varint(payload, i)
        types.append(t)
    out: list[object] = []
    j = header_size
    for t in types:
        if t == 0:
            out.append(None)
        elif t in _INT_SIZES:
            n = _INT_SIZES[t]
            out.append(int.from_bytes(payload[j : j + n], "big", signed=True))
            j += n
        elif t in (8, 9):
            out.append(t - 8)
        elif t == 7:
            out.append(float("nan"))
            j += 8
        elif t >= 12:
            n = (t - 12) // 2
            out.append(bytes(payload[j : j + n]) if t % 2 == 0 else None)
            j += n
        else:
            return None
    return out if j <= len(payload) else None


def scan_message_rows(blob: bytes) -> tuple[list[PageRow], int]:
    """Rows of every intact table-leaf page that look like rosbag2 messages, and the page size."""
    page_size = int.from_bytes(blob[16:18], "big") or 65536
    usable = page_size - blob[20]
    max_local = usable - 35
    min_local = ((usable - 12) * 32 // 255) - 23
    pages = len(blob) // page_size
    rows: list[PageRow] = []
    for p in range(pages):
        base = p * page_size
        head = base + (100 if p == 0 else 0)
        if blob[head] != 0x0D:
            continue
        cells = int.from_bytes(blob[head + 3 : head + 5], "big")
        for c in range(cells):
            try:
                ptr = base + int.from_bytes(blob[head + 8 + 2 * c : head + 10 + 2 * c], "big")
                size, i = _varint(blob, ptr)
                row_id, i = _varint(blob, i)
                payload = _payload(blob, i, size, max_local, min_local, usable, page_size, pages)
                rec = None if payload is None else _record(payload)
            except (IndexError, ValueError):
                continue
            if rec is not None and len(rec) == 4 and rec[0] is None and isinstance(rec[1], int):
                if isinstance(rec[2], int) and isinstance(rec[3], bytes):
                    rows.append(PageRow(row_id, rec[1], rec[2], rec[3], p + 1))
    rows.sort(key=lambda r: r.row_id)
    return rows, page_size


def _payload(blob, i, size, max_local, min_local, usable, page_size, pages) -> bytes | None:
    if size <= max_local:
        return blob[i : i + size]
    k = min_local + (size - min_local) % (usable - 4)
    local = k if k <= max_local else min_local
    parts = [blob[i : i + local]]
    remaining = size - local
    nxt = int.from_bytes(blob[i + local : i + local + 4], "big")
    while remaining > 0:
        if nxt == 0 or nxt > pages:
            return None  # the overflow chain runs past the end of the file
        base = (nxt - 1) * page_size
        take = min(remaining, usable - 4)
        parts.append(blob[base + 4 : base + 4 + take])
        remaining -= take
        nxt = int.from_bytes(blob[base : base + 4], "big")
    return b"".join(parts)
