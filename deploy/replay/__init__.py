"""Replay of logged runs (torch-free): read sim2real and rosbag2 logs, re-run the policy on logged observations."""

from deploy.replay.errors import LogReadError, ReplayError, TopicMapError
from deploy.replay.flight import Flight, Transition, load_flight
from deploy.replay.sources import RawLog, RawMessage, read_messages
from deploy.replay.topic_map import TopicMap, TopicRole

__all__ = [
    "Flight",
    "LogReadError",
    "RawLog",
    "RawMessage",
    "ReplayError",
    "TopicMap",
    "TopicMapError",
    "TopicRole",
    "Transition",
    "load_flight",
    "read_messages",
]
