"""Articulated robots (arms, legged robots): profiles, MuJoCo models, engines, tasks."""
