"""The DDS domain shares of concurrent test processes (tests/domains.py) never overlap."""

from __future__ import annotations

import pytest

from tests import domains


def _ids(monkeypatch, share: str, worker: str | None = None, workers: int | None = None) -> set[int]:
    monkeypatch.setenv(domains.SHARE_ENV, share)
    for name, value in (("PYTEST_XDIST_WORKER", worker), ("PYTEST_XDIST_WORKER_COUNT", workers)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(value))
    index, count = domains.domain_share()
    return set(range(1 + index, domains.MAX_DOMAIN + 1, count))


def test_the_phases_and_their_workers_partition_the_ids(monkeypatch):
    shares = [_ids(monkeypatch, f"{k}/2", f"gw{w}", 2) for k in (0, 1) for w in (0, 1)]
    assert set().union(*shares) == set(range(1, 231))  # every id 1..230, never 0
    assert sum(len(s) for s in shares) == 230  # and no id in two shares
    assert _ids(monkeypatch, "0/1") == set(range(1, 231))


def test_random_domain_stays_in_its_share(monkeypatch):
    allowed = _ids(monkeypatch, "1/2")
    assert len(allowed) == 115 and min(allowed) == 2
    assert {domains.random_domain() for _ in range(2000)} == allowed


def test_random_domain_repeats_no_id_until_its_share_is_used_up(monkeypatch):
    allowed = _ids(monkeypatch, "0/2")
    domains._given.clear()
    first = [domains.random_domain() for _ in range(len(allowed))]
    assert sorted(first) == sorted(allowed)  # 115 draws: every id of the share once
    assert domains.random_domain() in allowed  # then it starts over


@pytest.mark.parametrize("share", ["2/2", "x", "1/0", "-1/2"])
def test_a_malformed_share_is_refused(monkeypatch, share):
    monkeypatch.setenv(domains.SHARE_ENV, share)
    with pytest.raises(ValueError, match="expected 'k/n'"):
        domains.domain_share()
