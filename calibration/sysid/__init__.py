"""System identification from logged flights: fit simulator parameters, write a randomization spec."""
