"""Articulated-robot tasks: arm-reach, legged-walk."""
