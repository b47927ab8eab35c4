"""On-board deployment: the policy on a Crazyflie's STM32F405 (firmware/crazyflie) and its check under QEMU."""
