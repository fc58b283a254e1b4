"""The burn-in agent: runs on the freshly installed host. Python >= 3.9, standard library only."""

__version__ = "0.1.0"
