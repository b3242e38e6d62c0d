"""The Python ceiling: double_plus_one computed inline by a bare FastAPI app.

python -m uvicorn benchmarks.competitors.bare_fastapi:app --host 127.0.0.1 --port PORT
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.post("/workflows/double_plus_one/execute")
async def execute(body: dict[str, Any]) -> dict[str, Any]:
    x = body["inputs"]["x"]
    return {"outputs": {"add_one": {"result": {"value": x * 2 + 1}}}, "status": "completed"}
