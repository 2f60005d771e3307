"""Callbell hardware: wiring pictures, pin map table and parts list (see README.md here).

``hardware.draw`` regenerates the pictures and the pin map table from ``firmware/pinmap.py``.
"""
