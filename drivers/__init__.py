"""Robots on the runtime's topic table: the simulated robots (software-in-the-loop processes) and, per hardware
family, bridges between the table and the vendor's protocol (docs/runtime.md). Imports without torch."""
