"""bastiond: the Bastion API daemon."""

__version__ = "0.1.0"
