"""The CLI without Ray: help is fast and Ray-free; app specs load or fail clearly."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nexus_ray import Nexus
from nexus_ray.channels.cli import cli
from nexus_ray.loader import AppNotFoundError, load_app

ROOT = Path(__file__).resolve().parents[2]


def test_help_does_not_import_ray() -> None:
    code = (
        "import sys\nfrom nexus_ray.channels.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('RAY' if 'ray' in sys.modules else 'NO-RAY')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("NO-RAY")


def test_help_lists_serve() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "serve" in result.output


def test_load_app_from_path_and_named_attr(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(
        textwrap.dedent("""
        from nexus_ray import Nexus
        app = Nexus()
        other = Nexus(port=9001)
    """)
    )
    assert isinstance(load_app(str(tmp_path / "myapp.py")), Nexus)
    assert load_app(f"{tmp_path / 'myapp.py'}:other").settings.port == 9001


def test_load_quickstart_by_module_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    app = load_app("examples.quickstart:app")
    assert list(app.workflows) == ["double_plus_one", "greet", "route_order", "check_health"]


def test_load_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(AppNotFoundError, match="No such app file"):
        load_app(str(tmp_path / "missing.py"))
    (tmp_path / "noapp.py").write_text("x = 1\n")
    with pytest.raises(AppNotFoundError, match="expected a Nexus object named 'app'"):
        load_app(str(tmp_path / "noapp.py"))
    with pytest.raises(AppNotFoundError, match="No module named 'no_such_module_xyz'"):
        load_app("no_such_module_xyz:app")


def test_serve_with_missing_app_exits_4_with_one_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from nexus_ray.channels.cli import main; main()", "serve", str(tmp_path / "nope.py")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 4
    assert out.stderr.strip().startswith("Error: No such app file") and "Traceback" not in out.stderr


def test_client_commands_do_not_import_ray() -> None:
    code = (
        "import sys\nfrom nexus_ray.channels.cli import run_cli\n"
        "run_cli(['list', '--url', 'http://127.0.0.1:9'])\n"
        "run_cli(['run', 'x', '-i', 'a=1', '--url', 'http://127.0.0.1:9'])\n"
        "print('RAY' if 'ray' in sys.modules else 'NO-RAY')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("NO-RAY") and "Server unreachable" in out.stderr


@pytest.mark.parametrize(
    ("app_line", "args", "env", "port"),
    [
        ("app = Nexus()", [], {}, 8000),
        ("app = Nexus()", [], {"NEXUS_PORT": "9123"}, 9123),  # was 8000: the flag's default won
        ("app = Nexus(port=9300)", [], {"NEXUS_PORT": "9123"}, 9300),  # the app's own setting
        ("app = Nexus(port=9300)", ["--port", "9200"], {"NEXUS_PORT": "9123"}, 9200),  # a flag wins
    ],
)
def test_serve_takes_the_port_from_its_flag_else_the_app_else_nexus_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app_line: str, args: list[str], env: dict[str, str], port: int
) -> None:
    from nexus_ray import ConfigurationError

    (tmp_path / "svc.py").write_text(f"from nexus_ray import Nexus\n{app_line}\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen: list[int] = []

    def start(self: Nexus, block: bool = False) -> None:
        seen.append(self.settings.port)
        raise ConfigurationError("stopped by the test before Ray starts")

    monkeypatch.setattr(Nexus, "start", start)
    result = CliRunner().invoke(cli, ["serve", str(tmp_path / "svc.py"), *args])
    assert isinstance(result.exception, ConfigurationError) and seen == [port]
