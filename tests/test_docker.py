"""The Dockerfile, checked without a Docker engine: what it names must exist."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from monitor.cli import cli

ROOT = Path(__file__).parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def instruction(name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+)$", DOCKERFILE, re.M)]


def test_entrypoint_is_exec_form_and_a_real_console_script() -> None:
    """ENTRYPOINT is exec form and names the `monitor` script the package installs; CMD is a real command."""
    entrypoint = json.loads(instruction("ENTRYPOINT")[-1])
    command = json.loads(instruction("CMD")[-1])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["monitor"]
    assert "monitor" in scripts
    assert command[0] in cli.commands


def test_healthcheck_runs_monitor_health() -> None:
    """HEALTHCHECK runs `monitor health`, an existing command."""
    (health,) = instruction("HEALTHCHECK")
    exec_form = json.loads(health.split("CMD", 1)[1])
    assert exec_form == ["monitor", "health"]
    assert "health" in cli.commands


def test_runs_as_non_root_with_state_volume() -> None:
    """The runtime stage runs as a non-root user and declares state/ as a volume."""
    users = instruction("USER")
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert "/app/state" in instruction("VOLUME")[-1]


def test_copied_paths_exist() -> None:
    """Every path the build copies from the context exists in the repository."""
    for line in instruction("COPY"):
        if line.startswith("--from"):
            continue
        *sources, _ = line.split()
        for source in sources:
            assert (ROOT / source).exists(), source


def test_compose_uses_init_and_mounts_state() -> None:
    """docker-compose.yml forwards signals with init and keeps state on the host."""
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "init: true" in compose
    assert "./state:/app/state" in compose
