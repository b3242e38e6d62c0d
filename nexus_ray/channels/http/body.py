"""Reading a JSON request body within the size limit, with errors that name the problem."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from ...checks import decimal
from ...errors import InputValidationError, InvalidRequestError, PayloadTooLargeError
from ...runtime.ids import IDEMPOTENCY_KEY_RULE, valid_idempotency_key
from ...workflow.fields import describe_validation_error
from ..wire_json import NonStandardJSONError, OutOfRangeNumberError, RefusedJSONError, loads
from .models import ExecuteRequest


async def read_json_body(request: Request, limit: int) -> Any:
    """The parsed JSON body (``{}`` when empty); 413 past ``limit`` bytes, 400 when malformed."""
    declared = decimal(request.headers.get("content-length", ""))
    if declared is not None and declared > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    if not body.strip():
        return {}
    try:
        return loads(body)
    except NonStandardJSONError as exc:
        raise InvalidRequestError(f"The request body is not standard JSON: {exc}.", constant=exc.constant) from None
    except OutOfRangeNumberError as exc:
        raise InvalidRequestError(f"The request body cannot be read: {exc}.", number=exc.number) from None
    except RefusedJSONError as exc:
        raise InvalidRequestError(f"The request body cannot be read: {exc}.") from None
    except UnicodeDecodeError:
        raise InvalidRequestError("The request body is not UTF-8 encoded JSON.") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"Malformed JSON body at line {exc.lineno}, column {exc.colno}: {exc.msg}.",
            line=exc.lineno,
            column=exc.colno,
        ) from None


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"The request body is larger than {limit} bytes (NEXUS_MAX_BODY_BYTES).", limit_bytes=limit
    )


def parse_execute_request(body: Any, workflow: str) -> ExecuteRequest:
    """The execute envelope; unknown keys are named (inputs belong under ``"inputs"``)."""
    if not isinstance(body, dict):
        raise InputValidationError(
            [{"field": "body", "message": 'must be a JSON object like {"inputs": {...}}', "type": "type_error"}],
            workflow=workflow,
        )
    try:
        return ExecuteRequest.model_validate(body)
    except ValidationError as exc:
        errors = describe_validation_error(exc, "body")
        for error in errors:
            if error["type"] == "extra_forbidden":
                error["message"] = 'Unknown field; put workflow inputs under "inputs"'
        raise InputValidationError(errors, workflow=workflow) from None


def idempotency_key(request: Request) -> str | None:
    """The Idempotency-Key header: 1-255 printable ASCII characters, or absent."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not valid_idempotency_key(key):
        raise InvalidRequestError(f"Idempotency-Key must be {IDEMPOTENCY_KEY_RULE}.", header="Idempotency-Key")
    return key
