"""The lazily imported CLI groups: every name loads, groups stay groups, and nothing heavy loads up front."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from trustlane.cli import lazy


@pytest.mark.parametrize("name", sorted(lazy.LAZY))
def test_every_lazy_name_loads_as_it_was_registered(name: str) -> None:
    command = lazy.load(name)
    assert command.name == name
    _, attribute = lazy.LAZY[name]
    is_group = isinstance(getattr(sys.modules[lazy.LAZY[name][0]], attribute), typer.Typer)
    assert hasattr(command, "commands") == is_group  # `data` keeps `export` as a subcommand


def test_the_root_lists_every_command_without_loading_them() -> None:
    code = (
        "import sys; import trustlane.cli.main as m; "
        "heavy = [n for n in ('cv2', 'onnxruntime', 'sqlalchemy', 'fastapi', 'matplotlib') if n in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
    listing = subprocess.run(
        [sys.executable, "-m", "trustlane", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in lazy.LAZY:
        assert f" {name} " in listing
