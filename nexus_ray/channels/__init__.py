"""Channels: the HTTP ingress (REST) on Ray Serve and the ``nexus`` CLI."""
