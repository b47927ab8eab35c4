"""Batched simulators, tasks, observation and randomization specs.

Importing ``sim`` (and ``sim.obs_spec``, ``sim.randomization``) does not import torch: the robot computer
uses the observation spec without it. Modules that simulate import torch themselves.
"""
