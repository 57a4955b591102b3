"""kobako (小箱, "small box"): a hackable container platform in Python."""

__version__ = "0.1.0"
