"""Read the messages of a log, whatever wrote it: sim2real's flight recorder (MCAP) or rosbag2 (sqlite3 ``.db3``
or ``.mcap``, a bag directory or a bare storage file), Humble or Jazzy.

Complete logs are read through ``rosbags`` (the ROS 2 ecosystem's independent reader). When it refuses a file
(a run killed before closing it, a truncated copy, a corrupt page), the file is read again record by record
and the readable prefix is kept: MCAP through :func:`deploy.recording.read_log` (CRC-checked chunks), sqlite3
row by row. What was lost is reported in :attr:`RawLog.problems`, naming the file and the byte offset or row.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.replay.cdr_fast import FAST
from deploy.replay.errors import LogReadError, ReplayError

log = logging.getLogger(__name__)
TYPESTORES = ("humble", "jazzy")


Selector = set[str] | Callable[[dict[str, str]], Iterable[str]] | None


def _selected(wanted: Selector, log_topics: dict[str, str], problems: list[str] | None = None) -> set[str] | None:
    if wanted is None or isinstance(wanted, set):
        return wanted
    try:
        return set(wanted(log_topics))
    except ReplayError as exc:
        if not problems:
            raise
        raise type(exc)(f"{exc}. Reading the log met: {'; '.join(problems)}") from exc


@dataclass(frozen=True)
class RawMessage:
    """One message: topic, ROS 2 type, log time (ns) and the message object (attribute access), or for the
    types :mod:`deploy.replay.cdr_fast` reads, ``msg=None`` and the CDR bytes in ``data``
    (:meth:`RawLog.decoded` decodes either)."""

    topic: str
    ros_type: str
    log_time_ns: int
    msg: Any
    data: bytes | None = None


@dataclass
class RawLog:
    """Messages of the wanted topics in time order, the topics the log has (name -> type) and what was lost."""

    path: Path
    messages: list[RawMessage] = field(default_factory=list)
    topics: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    reader: str = ""
    decode: Callable[[str, bytes], Any] | None = None

    def of(self, topic: str) -> list[RawMessage]:
        return [m for m in self.messages if m.topic == topic]

    def decoded(self, m: RawMessage) -> Any:
        if m.msg is not None or self.decode is None or m.data is None:
            return m.msg
        return self.decode(m.ros_type, m.data)


def make_typestore(name: str = "humble", extra_msgs: Mapping[str, str] | None = None) -> Any:
    """A rosbags typestore for ``humble`` or ``jazzy`` that also knows sim2real's own message types and
    ``extra_msgs`` (type name -> ``.msg`` text)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    from deploy.msgs.registry import _MSG_TEXT

    stores = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY}
    if name not in stores:
        raise LogReadError(f"unknown typestore {name!r}; expected one of {sorted(stores)}")
    store = get_typestore(stores[name])
    extra: dict[str, Any] = {}
    for ros_type, text in _MSG_TEXT.items():
        if ros_type.startswith("sim2real_msgs/"):
            extra.update(get_types_from_msg(text, ros_type))
    for ros_type, text in (extra_msgs or {}).items():
        try:
            extra.update(get_types_from_msg(text, ros_type))
        except Exception as exc:
            raise LogReadError(f"the .msg text given for {ros_type} does not parse: {exc}") from exc
    store.register(extra)
    return store


def read_messages(
    path: str | Path,
    topics: Iterable[str] | Callable[[dict[str, str]], Iterable[str]] | None = None,
    *,
    typestore: str = "humble",
    extra_msgs: Mapping[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> RawLog:
    """Decode the messages of ``topics`` (all when None; a callable gets the log's {topic: type} and returns
    the topics to decode) from the log at ``path``.

    Raises :class:`LogReadError` when nothing can be read (not a log, missing file, unknown storage); a log
    that is readable up to some point is returned with the problem recorded in ``problems``.
    """
    path = Path(path)
    if not path.exists():
        raise LogReadError(f"log {str(path)!r} does not exist; pass a .mcap or .db3 file or a rosbag2 directory")
    if path.suffix.lower() in (".ulg", ".bin") and path.is_file():
        raise LogReadError(
            f"{path}: a PX4 / ArduPilot log has no ROS 2 topics; read it with deploy.replay.load_flight "
            "(deploy/replay/autopilot.py)"
        )
    wanted: Selector = topics if topics is None or callable(topics) else set(topics)
    try:
        return _read_rosbags(path, wanted, make_typestore(typestore, extra_msgs), typestore, progress)
    except LogReadError:
        raise
    except Exception as exc:  # rosbags raises many types on damaged files; the fallbacks say what was lost
        first = f"{path}: rosbags could not read the log ({type(exc).__name__}: {exc})"
        log.info("%s; reading it record by record", first)
    storage = _storage_file(path)
    if storage.suffix == ".mcap":
        out = _read_mcap_tolerant(storage, wanted, make_typestore(typestore, extra_msgs), typestore)
    elif storage.suffix == ".db3":
        out = _read_sqlite_tolerant(storage, wanted, make_typestore(typestore, extra_msgs), typestore)
    else:
        raise LogReadError(
            f"{path}: not a log this tool reads (storage {storage.suffix!r}); expected .mcap, .db3 or a rosbag2 directory"
        )
    return out


def _storage_file(path: Path) -> Path:
    if path.is_file():
        return path
    files = sorted([*path.glob("*.mcap"), *path.glob("*.db3")])
    if not files:
        raise LogReadError(f"{path}: the directory holds no .mcap or .db3 storage file; is it a rosbag2 directory?")
    if len(files) > 1:
        log.warning("%s: %d storage files; reading only the first, %s, record by record", path, len(files), files[0])
    return files[0]


def _read_rosbags(path: Path, wanted: Selector, store: Any, typestore: str, progress) -> RawLog:
    from rosbags.highlevel import AnyReader

    out = RawLog(path, reader="rosbags")
    with AnyReader([path], default_typestore=store) as reader:
        out.topics = {c.topic: c.msgtype for c in reader.connections}
        wanted = _selected(wanted, out.topics)
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        _check_decodable(path, reader, conns)
        count = 0
        out.decode = _decoder(reader.typestore)  # kept after close: holds the bag's own definitions
        for conn, stamp, data in reader.messages(connections=conns):
            count += 1
            if progress is not None and count % 10000 == 0:
                progress(10000)
            if conn.msgtype in FAST:  # decoded in bulk from the bytes (deploy.replay.cdr_fast)
                out.messages.append(RawMessage(conn.topic, conn.msgtype, int(stamp), None, bytes(data)))
                continue
            try:
                msg = reader.deserialize(data, conn.msgtype)
            except Exception as exc:
                raise LogReadError(
                    f"{path}: message {count - 1} on topic {conn.topic} ({conn.msgtype}) at log time {stamp} ns "
                    f"cannot be decoded: {exc}. The type definition in the log may not match the data; "
                    f"try --typestore {'jazzy' if typestore == 'humble' else 'humble'}"
                ) from exc
            out.messages.append(RawMessage(conn.topic, conn.msgtype, int(stamp), msg))
    return out


def _check_decodable(path: Path, reader: Any, conns: list[Any]) -> None:
    unknown = sorted({f"{c.topic} ({c.msgtype})" for c in conns if c.msgtype not in reader.typestore.fielddefs})
    if unknown:
        raise LogReadError(
            f"{path}: no message definition for topics {unknown}: the bag embeds none and the typestore does not "
            "know the type. Record with a ROS 2 distribution that stores definitions (Iron or later), or add the "
            "package's .msg texts under `types:` in the topic map"
        )


def _decoder(store: Any) -> Callable[[str, bytes], Any]:
    def decode(ros_type: str, data: bytes) -> Any:
        return store.deserialize_cdr(data, ros_type)

    return decode


def _read_mcap_tolerant(path: Path, wanted: Selector, store: Any, typestore: str) -> RawLog:
    from deploy.recording import LogFormatError, read_log

    try:
        contents = read_log(path, decode=False)
    except LogFormatError as exc:
        raise LogReadError(str(exc)) from exc
    out = RawLog(path, reader="mcap record by record", metadata=contents.metadata)
    if contents.problem:
        out.problems.append(f"{path}: {contents.problem}")
    for m in contents.messages:
        out.topics.setdefault(m.topic, m.ros_type)
    wanted = _selected(wanted, out.topics, out.problems)
    decode = out.decode = _decoder(store)
    for i, m in enumerate(contents.messages):
        if wanted is not None and m.topic not in wanted:
            continue
        if m.ros_type in FAST:
            out.messages.append(RawMessage(m.topic, m.ros_type, m.log_time_ns, None, bytes(m.data)))
            continue
        try:
            msg = decode(m.ros_type, m.data)
        except Exception as exc:
            raise LogReadError(
                f"{path}: message {i} on topic {m.topic} has type {m.ros_type}, which the {typestore} typestore "
                f"cannot decode ({exc}); add its .msg text under `types:` in the topic map"
            ) from exc
        out.messages.append(RawMessage(m.topic, m.ros_type, m.log_time_ns, msg))
    out.messages.sort(key=lambda r: r.log_time_ns)
    return out


def _read_sqlite_tolerant(path: Path, wanted: Selector, store: Any, typestore: str) -> RawLog:
    import tempfile

    out = RawLog(path, reader="sqlite3 row by row")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        lost = _repairable_copy(path, copy)
        if lost:
            out.problems.append(
                f"{path}: the file ends {lost} bytes into a page of the database (truncated copy or crash); "
                "rows stored from there on are lost"
            )
        conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        try:
            topics = {row[0]: (row[1], row[2]) for row in conn.execute("SELECT id, name, type FROM topics")}
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LogReadError(
                f"{path}: not a readable rosbag2 sqlite3 file ({exc}); its table of topics cannot be read, so no "
                "message can be attributed to a topic. Is it a rosbag2 .db3 file, and complete up to its first pages?"
            ) from exc
        out.topics = {name: ros_type for name, ros_type in topics.values()}
        out.decode = _decoder(store)
        selected = _selected(wanted, out.topics, out.problems)
        try:
            last_id = _sqlite_rows(conn, path, topics, selected, _decoder(store), typestore, out)
        finally:
            conn.close()
        if last_id is not None:
            _recover_pages(path, copy, topics, selected, _decoder(store), out, after_id=last_id)
    out.messages.sort(key=lambda r: r.log_time_ns)
    return out


def _repairable_copy(path: Path, copy: Path) -> int:
    """Copy a possibly truncated sqlite file so that SQLite reads what is there: whole pages only, and the
    header's page count marked stale (SQLite then takes the size from the file). Returns bytes dropped."""
    blob = path.read_bytes()
    if len(blob) < 100 or not blob.startswith(b"SQLite format 3\x00"):
        raise LogReadError(f"{path}: not an sqlite3 file (first bytes {blob[:16]!r}); expected a rosbag2 .db3")
    page = int.from_bytes(blob[16:18], "big") or 65536
    whole = len(blob) - len(blob) % page
    data = bytearray(blob[:whole])
    counter = int.from_bytes(data[24:28], "big")
    data[92:96] = ((counter + 1) % 2**32).to_bytes(4, "big")  # version-valid-for != change counter
    copy.write_bytes(bytes(data))
    return len(blob) - whole


def _recover_pages(path: Path, copy: Path, topics, selected, decode, out: RawLog, after_id: int) -> None:
    """When SQL cannot reach further rows (a B-tree page on the way is lost), decode the intact leaf pages."""
    from deploy.replay.sqlite_pages import scan_message_rows

    rows, page_size = scan_message_rows(copy.read_bytes())
    rows = [r for r in rows if r.row_id > after_id]
    if not rows:
        return
    gaps = [(a.row_id, b.row_id) for a, b in itertools.pairwise(rows) if b.row_id != a.row_id + 1]
    for row in rows:
        name, ros_type = topics.get(row.topic_id, (None, None))
        if name is None or (selected is not None and name not in selected):
            continue
        try:
            msg = None if ros_type in FAST else decode(ros_type, row.data)
            out.messages.append(RawMessage(name, ros_type, row.timestamp, msg, row.data))
        except Exception:
            out.problems.append(f"{path}: row {row.row_id} (page {row.page}) does not decode as {ros_type}; skipped")
    missing = ", ".join(f"{a + 1}-{b - 1}" for a, b in gaps[:5]) + (" ..." if len(gaps) > 5 else "")
    out.problems.append(
        f"{path}: recovered {len(rows)} more rows (ids {rows[0].row_id}-{rows[-1].row_id}) from intact pages of "
        f"{page_size} bytes; the last ends on page {rows[-1].page}, byte {rows[-1].page * page_size}"
        + (f"; rows {missing} are lost" if gaps else "")
    )
    log.warning("%s", out.problems[-1])


def _sqlite_rows(conn, path, topics, selected, decode, typestore: str, out: RawLog) -> int | None:
    """Read rows in id order until the end (returns None) or the first unreadable row (returns the last id read)."""
    last_id, last_stamp, limit = 0, None, 2000
    query = "SELECT id, topic_id, timestamp, data FROM messages WHERE id > ? ORDER BY id LIMIT ?"
    while True:
        try:
            rows = conn.execute(query, (last_id, limit)).fetchall()
        except sqlite3.DatabaseError as exc:
            if limit > 1:  # narrow down to the first unreadable row
                limit = max(1, limit // 8)
                continue
            out.problems.append(
                f"{path}: the messages after row {last_id} (log time {last_stamp} ns) cannot be read through "
                f"SQLite: {exc}. The file is truncated or corrupt; the {len(out.messages)} messages before were kept"
            )
            log.warning("%s", out.problems[-1])
            return last_id
        if not rows:
            return None
        for row_id, topic_id, stamp, data in rows:
            last_id, last_stamp = row_id, stamp
            name, ros_type = topics.get(topic_id, (None, None))
            if name is None:
                out.problems.append(f"{path}: row {row_id} names unknown topic id {topic_id}; skipped")
                continue
            if selected is not None and name not in selected:
                continue
            if ros_type in FAST:
                out.messages.append(RawMessage(name, ros_type, int(stamp), None, bytes(data)))
                continue
            try:
                msg = decode(ros_type, bytes(data))
            except Exception as exc:
                raise LogReadError(
                    f"{path}: row {row_id} on topic {name} ({ros_type}) at log time {stamp} ns cannot be decoded: "
                    f"{exc}. Is the type known to the {typestore} typestore? Add its .msg text under `types:` "
                    "in the topic map"
                ) from exc
            out.messages.append(RawMessage(name, ros_type, int(stamp), msg))
