"""Hearth engines: plain Python + torch. Nothing in this package imports Qt."""
