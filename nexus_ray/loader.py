"""Load an app from ``PATH.py``, ``PATH.py:name`` or ``module:attr``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from .app import Nexus
from .errors import NotFoundError


class AppNotFoundError(NotFoundError):
    """The app spec does not name a loadable Nexus app."""

    title = "App not found"


def load_app(spec: str) -> Nexus:
    """The Nexus object that ``spec`` names (attribute ``app`` unless ``:name`` is given)."""
    target, _, attr = spec.partition(":")
    module = _load_file(Path(target)) if target.endswith(".py") else _import(target)
    name = attr or "app"
    app = getattr(module, name, None)
    if not isinstance(app, Nexus):
        found = type(app).__name__ if app is not None else "nothing"
        raise AppNotFoundError(
            f"{spec!r}: expected a Nexus object named {name!r} in {target}, found {found}. "
            "Define `app = Nexus()` there, or name it with PATH.py:NAME.",
            spec=spec,
        )
    return app


def _load_file(path: Path) -> Any:
    if not path.is_file():
        raise AppNotFoundError(f"No such app file: {path}.", spec=str(path))
    resolved = path.resolve()
    sys.path.insert(0, str(resolved.parent))  # the app may import its siblings
    module_name = f"nexus_app_{resolved.stem}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise AppNotFoundError(f"Cannot load {path} as a Python module.", spec=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _import(name: str) -> Any:
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise AppNotFoundError(
                f"No module named {name!r} (looked in {Path.cwd()} and sys.path).", spec=name
            ) from None
        raise
