"""The example configs, for people to read and for ``callbell demo`` to run.

pyproject.toml ships this folder inside the package as ``callbell.examples`` (package-dir), so
an installed wheel has the demo store too; code reads it with importlib.resources, never by a
path relative to the repository.
"""
