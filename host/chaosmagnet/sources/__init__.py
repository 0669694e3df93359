"""Entropy sources: the interface (base), the registry, and one module per kind of source."""
