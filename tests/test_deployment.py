"""The deployment files are not run by the tests, but they must hold together: the compose file
parses and runs two webhook instances behind the proxy with PostgreSQL and Redis, the image is
built from requirements.lock, the systemd unit runs the bot."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
import yaml

from tests.support import REPO


def test_compose_runs_two_webhook_instances_behind_a_proxy() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"bot1", "bot2", "caddy", "postgres", "redis", "migrate"} <= set(services)
    names = set()
    for name in ("bot1", "bot2"):
        bot = services[name]
        env = bot["environment"]
        assert (
            env["DATABASE_URL"].startswith("postgresql+asyncpg://")
            and "@postgres:" in env["DATABASE_URL"]
        )
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["WEBHOOK_URL"].startswith("https://")
        assert env["WEBHOOK_LISTEN"] == "0.0.0.0:8080"
        names.add(env["INSTANCE_NAME"])
        assert bot["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert bot["build"] == "."
    assert len(names) == 2
    assert services["migrate"]["command"] == ["migrate"]
    volumes = set(compose["volumes"])
    assert {"pgdata", "redisdata"} <= volumes
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    caddy = services["caddy"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    caddyfile = (REPO / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    assert re.search(r"reverse_proxy bot1:8080 bot2:8080", caddyfile)
    assert "handle /webhook" in caddyfile  # the bots serve /webhook (bot/app.py)


def locked(name: str) -> dict[str, str]:
    return dict(
        line.lower().split("==")
        for line in (REPO / name).read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )


def test_dockerfile_installs_the_runtime_lock_and_copies_what_exists() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY requirements.lock" in dockerfile
    assert "pip install -r requirements.lock" in dockerfile
    assert not re.search(r"^(COPY|RUN).*requirements-dev", dockerfile, flags=re.MULTILINE)
    for source in re.findall(r"^COPY (\S+) ", dockerfile, flags=re.MULTILINE):
        assert (REPO / source).exists(), source
    assert 'ENTRYPOINT ["python", "-m", "consultbot"]' in dockerfile and 'CMD ["run"]' in dockerfile


def test_runtime_and_development_dependencies_are_locked_apart() -> None:
    runtime, dev = locked("requirements.lock"), locked("requirements-dev.lock")
    assert not runtime.keys() & dev.keys()
    assert {"pytest", "pytest-asyncio", "pytest-timeout", "ruff", "playwright"} <= dev.keys()
    assert {"aiogram", "sqlalchemy", "asyncpg", "redis", "matplotlib", "greenlet"} <= runtime.keys()


def test_systemd_unit_runs_the_bot_and_restarts_it() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((REPO / "deploy" / "consultbot.service").read_text(encoding="utf-8"))
    service = unit["Service"]
    assert service["ExecStart"].endswith("/.venv/bin/consultbot run")
    assert service["Restart"] == "always"
    assert service["EnvironmentFile"].endswith("/.env")
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # It pointed ReadWritePaths at a folder nobody created: 226/NAMESPACE, restarting in a loop.
    assert "ReadWritePaths" not in service
    assert service["StateDirectory"] == "consultbot" and service["StateDirectoryMode"] == "0700"
    assert service["UMask"] == "0077"
    text = (REPO / "deploy" / "consultbot.service").read_text(encoding="utf-8")
    assert "Environment=DATABASE_URL=sqlite+aiosqlite:////var/lib/consultbot/" in text


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    import shutil
    import subprocess

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    unit = tmp_path / "consultbot.service"
    unit.write_text((REPO / "deploy" / "consultbot.service").read_text(encoding="utf-8"))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    # Paths of the install (/opt/consultbot) do not exist here: only the unit's syntax counts.
    problems = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and "/opt/consultbot" not in line and "not executable" not in line
    ]
    assert not problems, result.stderr
