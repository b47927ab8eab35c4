"""WriterPin and entity names, without DDS."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from deploy.transport.writers import WriterPin, _parse_entity_name, unsigned_handle, writer_entity_name

handles = st.lists(st.integers(0, 5), max_size=50)


@given(handles, st.integers(0, 5))
def test_pinned_admits_only_its_writer_and_counts_the_rest(writers: list[int], pinned: int) -> None:
    pin = WriterPin()
    pin.pin(pinned)
    admitted = [w for w in writers if pin.admit(w)]
    assert admitted == [w for w in writers if w == pinned]
    assert pin.rejected_count == len(writers) - len(admitted)
    assert pin.rejected_writers == set(writers) - {pinned}


@given(handles)
def test_unpinned_admits_all_and_pending_pins_the_first(writers: list[int]) -> None:
    pin = WriterPin()
    assert all(pin.admit(w) for w in writers) and pin.rejected_count == 0
    pin.pin(None)
    admitted = [w for w in writers if pin.admit(w)]
    assert admitted == [w for w in writers if w == writers[0]] if writers else admitted == []
    assert pin.handle == (writers[0] if writers else None)


def test_pin_resets_the_count_and_unpin_admits_again() -> None:
    pin = WriterPin()
    pin.pin(1)
    assert not pin.admit(2) and pin.rejected_count == 1
    pin.pin(2)
    assert pin.rejected_count == 0 and pin.admit(2) and not pin.admit(1)
    pin.unpin()
    assert pin.admit(1) and pin.admit(3) and not pin.pinned


def test_entity_names() -> None:
    node, host, pid = _parse_entity_name(writer_entity_name("deploy"))
    assert node == "deploy" and pid is not None and host
    assert _parse_entity_name("a@h:12") == ("a", "h", 12)
    assert _parse_entity_name("rclcpp_writer") == ("rclcpp_writer", "", None)
    assert _parse_entity_name("a@h:x") == ("a@h:x", "", None)
    assert unsigned_handle(-1) == 2**64 - 1 and unsigned_handle(5) == 5
