"""Batched quadrotor simulation in torch: dynamics, action interfaces, tasks."""
