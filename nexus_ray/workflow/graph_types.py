"""Small value types of the workflow graph."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Connection:
    """An edge: ``source``'s output at ``source_path`` feeds ``target``'s ``target_input``."""

    source: str
    source_path: tuple[str, ...]
    target: str
    target_input: str

    @property
    def source_output(self) -> str:
        """The dotted output path, e.g. ``"result.value"``."""
        return ".".join(self.source_path)

    def __str__(self) -> str:
        return f"{self.source}.{self.source_output} -> {self.target}.{self.target_input}"
