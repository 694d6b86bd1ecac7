"""Gather's shared library: the contract between services and the only code that touches the broker."""
