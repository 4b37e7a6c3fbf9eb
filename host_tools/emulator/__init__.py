"""The emulated board: the real MicroPython VM on a pty, with simulated hardware."""
