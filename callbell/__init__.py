"""Callbell: shared wire contract, broker supervisor and command line."""
__version__ = "0.1.0"
