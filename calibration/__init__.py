"""Camera, hand-eye, IMU and thrust calibration; system identification writes randomization specs."""
