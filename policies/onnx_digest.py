"""The exported policy's digest: sha256 over the graph and every ``sim2real.*`` metadata field, so a file whose
network or metadata was edited after export (an observation spec with two terms swapped, a changed scale, a
weight) is refused by name instead of flown. Torch-free and onnx-free: the robot computer reads the graph's bytes
straight from the protobuf wire format.

    sim2real.digests   JSON {"graph": sha256, "<field>": sha256 of its value, ...} for every sim2real.* field
    sim2real.digest    sha256 over that JSON (sorted keys): one value to compare and to print

This is an integrity check against careless edits, tools that rewrite metadata and mixed-up files, not a
signature: whoever edits a field on purpose can recompute both. It names the field that no longer matches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

DIGEST_KEY, DIGESTS_KEY = "digest", "digests"
GRAPH = "graph"
_GRAPH_FIELD = 7  # onnx.ModelProto.graph
_METADATA_FIELD = 14  # onnx.ModelProto.metadata_props


class DigestError(ValueError):
    """The file's graph or metadata does not match its digest, or it has none."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise DigestError("the file ends inside a protobuf varint: it is truncated or not an ONNX model")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def graph_bytes(model: bytes) -> bytes:
    """The serialized ``ModelProto.graph`` of an ONNX file's bytes (top-level protobuf fields walked by hand)."""
    pos, out = 0, []
    while pos < len(model):
        key, pos = _varint(model, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(model, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(model, pos)
            if number == _GRAPH_FIELD:
                out.append(model[pos : pos + size])
            pos += size
        else:
            raise DigestError(f"protobuf wire type {wire} at top level: not an ONNX model")
        if pos > len(model):
            raise DigestError("the file ends inside a protobuf field: it is truncated")
    if not out:
        raise DigestError("no graph in the file: not an ONNX model")
    return b"".join(out)


def _sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def field_digests(graph: bytes, metadata: Mapping[str, str]) -> dict[str, str]:
    """{"graph": ..., field: ...} over the graph bytes and the metadata fields (without the digest's own)."""
    out = {GRAPH: _sha(graph)}
    out.update({k: _sha(v) for k, v in metadata.items() if k not in (DIGEST_KEY, DIGESTS_KEY)})
    return out


def overall_digest(digests: Mapping[str, str]) -> str:
    return _sha(json.dumps(dict(digests), sort_keys=True, separators=(",", ":")))


def stamp(model, prefix: str) -> None:
    """Add ``<prefix>digests`` and ``<prefix>digest`` to an ``onnx.ModelProto`` (after its other metadata)."""
    props = {p.key[len(prefix) :]: p.value for p in model.metadata_props if p.key.startswith(prefix)}
    for key in (DIGEST_KEY, DIGESTS_KEY):
        props.pop(key, None)
    digests = field_digests(graph_bytes(model.SerializeToString()), props)
    kept = [p for p in model.metadata_props if p.key not in (prefix + DIGEST_KEY, prefix + DIGESTS_KEY)]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in ((DIGESTS_KEY, json.dumps(digests, sort_keys=True)), (DIGEST_KEY, overall_digest(digests))):
        entry = model.metadata_props.add()
        entry.key, entry.value = prefix + key, value


def stamp_file(path, prefix: str) -> str:
    """Stamp the ONNX file at ``path`` in place (:func:`stamp`) and return its digest. For files this project's own
    tools built (test data, fixtures that edit a model on purpose); a policy exported before digests existed is
    re-exported (``sim2real export RUN_DIR``), so its metadata is rebuilt from the checkpoint, not vouched for."""
    import onnx

    model = onnx.load(str(path))
    stamp(model, prefix)
    onnx.save(model, str(path))
    return next(p.value for p in model.metadata_props if p.key == prefix + DIGEST_KEY)


def verify(model: bytes, metadata: Mapping[str, str]) -> str:
    """Check an ONNX file's bytes and its ``sim2real.*`` metadata (prefix removed) against the stored digest.
    Returns the digest; raises :class:`DigestError` naming what differs."""
    if DIGEST_KEY not in metadata or DIGESTS_KEY not in metadata:
        raise DigestError(
            "the file carries no digest (exported before digests, or not by `sim2real export`): it cannot be "
            "checked against edits. Re-export it with `sim2real export RUN_DIR`"
        )
    try:
        stored = json.loads(metadata[DIGESTS_KEY])
    except ValueError:
        raise DigestError("its digests field is not JSON: the metadata was edited. Re-export the policy") from None
    if not isinstance(stored, dict) or overall_digest(stored) != metadata[DIGEST_KEY]:
        raise DigestError("its digests field does not match its digest: the metadata was edited. Re-export it")
    found = field_digests(graph_bytes(model), metadata)
    changed = sorted(k for k in set(stored) | set(found) if stored.get(k) != found.get(k))
    if changed:
        what = {
            k: "added after export" if k not in stored else "removed" if k not in found else "edited after export"
            for k in changed
        }
        names = ", ".join(f"the network ({what[k]})" if k == GRAPH else f"sim2real.{k} ({what[k]})" for k in changed)
        raise DigestError(
            f"the file does not match its digest: {names}. A policy whose network, observation or action "
            "layout changed after export would fly with a layout it was not trained for: re-export it with "
            "`sim2real export RUN_DIR`"
        )
    return metadata[DIGEST_KEY]
