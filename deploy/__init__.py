"""The on-robot runtime. Imports without torch: the robot computer installs `.[deploy]` only."""
