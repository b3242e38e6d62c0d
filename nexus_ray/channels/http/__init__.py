"""The HTTP channel: a FastAPI app served by a Ray Serve ingress deployment."""
