"""inferno-provision: bare-metal provisioning and burn-in for the Inferno GPU data center."""

__version__ = "0.1.0"
