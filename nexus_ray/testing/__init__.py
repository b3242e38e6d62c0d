"""Helpers for testing nexus_ray apps and their scaling."""
