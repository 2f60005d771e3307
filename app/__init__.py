"""The commands: ``callbell`` (cli.py) and what only commands use — the demo (demo.py), the
secured broker's files (broker_config.py), virtual devices for every room (simulate.py).

The top of the house: it may import the wire (callbell), the device (firmware), the hub and
the chain; none of them imports it (tests/test_architecture.py)."""
