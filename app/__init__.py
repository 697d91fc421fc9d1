"""A headless Customer Data Platform API."""

__version__ = "0.1.0"
