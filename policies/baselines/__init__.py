"""Classical controllers that run in the same batched envs as learned policies."""
