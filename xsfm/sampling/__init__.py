"""Samplers, probability paths, interpolants and guidance (pure torch)."""
