"""Multi-row statements: few shapes per table, every row once, in order."""

from __future__ import annotations

from nexus_ray.store.backends import row_chunks, values_sql


def test_rows_go_in_power_of_two_runs_of_at_most_128() -> None:
    rows = [(i,) for i in range(300)]
    chunks = list(row_chunks(rows))
    assert [len(c) for c in chunks] == [128, 128, 32, 8, 4]
    assert [r for c in chunks for r in c] == rows
    assert list(row_chunks([])) == []


def test_values_sql_has_one_placeholder_group_per_row() -> None:
    assert values_sql("INSERT INTO t (a, b) VALUES ", 2, 2) == "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
