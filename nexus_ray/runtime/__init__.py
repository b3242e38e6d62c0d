"""The runtime: Ray lifecycle, the RunHost pool, consistent hashing."""
