"""ROS 2 domain ids for the tests' DDS traffic.

Every test that talks DDS takes a random domain, so that a test's nodes never hear another test's (or a stale
process's) nodes. Tests run concurrently under `make test`: its two phases run at once, and a phase may have several
pytest-xdist workers. Each of them draws from its own share of the ids, so two concurrent tests can never pick the
same domain by chance: ``SIM2REAL_TEST_DOMAIN_SHARE=k/n`` (the Makefile's phases: 0/2 and 1/2; default 0/1) takes
every n-th id from k + 1, and an xdist worker subdivides its phase's share the same way.
"""

from __future__ import annotations

import os
import random

MAX_DOMAIN = 230  # Cyclone DDS's default port mapping serves domains 0..232; 0 is the users' default: left alone
SHARE_ENV = "SIM2REAL_TEST_DOMAIN_SHARE"


def domain_share() -> tuple[int, int]:
    """(index, count): this process's share of the ids is index + 1, index + 1 + count, ..."""
    raw = os.environ.get(SHARE_ENV, "0/1")
    try:
        index, count = (int(x) for x in raw.split("/"))
    except ValueError:
        index = count = 0  # refused below
    if not 0 <= index < count:
        raise ValueError(f"{SHARE_ENV}={raw!r}: expected 'k/n' with 0 <= k < n, e.g. 0/2")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    return index * workers + worker, count * workers


_given: set[int] = set()  # ids this process has handed out since its share was last used up


def random_domain() -> int:
    """A random domain id in 1..230 from this process's share (all of them by default), none this process handed out
    before until the share is used up: two fixtures alive at once (e.g. a module's legged and arm SIL robots) never
    share a domain (an independent draw each collided 1 time in 115)."""
    index, count = domain_share()
    share = set(range(1 + index, MAX_DOMAIN + 1, count))
    free = sorted(share - _given) or sorted(share)
    if len(free) == len(share):
        _given.clear()
    domain = random.choice(free)
    _given.add(domain)
    return domain
