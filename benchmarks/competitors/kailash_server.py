"""double_plus_one (the same two nodes as examples/quickstart.py) served by kailash-nexus
through its own REST API.

    benchmarks/.venvs/kailash/bin/python benchmarks/competitors/kailash_server.py PORT

Runs in its own virtualenv (bench_compare.py creates it). Kailash's own start() binds
0.0.0.0; we serve its FastAPI gateway with uvicorn on 127.0.0.1 instead (loopback only).
"""

from __future__ import annotations

import logging
import sys

import uvicorn
from kailash.workflow.builder import WorkflowBuilder
from nexus import Nexus


def build_workflow():  # type: ignore[no-untyped-def]
    builder = WorkflowBuilder()
    builder.add_node("PythonCodeNode", "double", {"code": "result = {'value': x * 2}"})
    builder.add_node("PythonCodeNode", "add_one", {"code": "result = {'value': value + 1}"})
    builder.add_connection("double", "result.value", "add_one", "value")
    return builder.build()


def main(port: int) -> None:
    logging.disable(logging.INFO)
    app = Nexus(api_port=port, enable_durability=False, rate_limit=None, enable_auth=False)
    app.register("double_plus_one", build_workflow())
    app.start(blocking=False)
    gateway = app._http_transport._gateway  # the FastAPI app Nexus.start() would serve
    uvicorn.run(gateway.app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(int(sys.argv[1]))
