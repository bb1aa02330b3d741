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


def _seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(s|m)?", value).groups()  # type: ignore[union-attr]
    return float(number) * (60 if unit == "m" else 1)


def test_compose_checks_health_migrates_first_and_stops_gracefully() -> None:
    from bot.config import Settings

    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    shutdown = Settings.model_fields["shutdown_timeout_seconds"].default
    for name in ("bot1", "bot2"):
        bot = services[name]
        probe = " ".join(bot["healthcheck"]["test"])
        assert "http://127.0.0.1:8080/healthz" in probe  # WEBHOOK_LISTEN's port, inside
        assert bot["environment"]["WEBHOOK_LISTEN"].endswith(":8080")
        # The bots start only once the one-shot migration has succeeded.
        assert bot["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        # A stop lets the updates in flight finish before Docker would kill it.
        assert _seconds(bot["stop_grace_period"]) > shutdown
    migrate = services["migrate"]
    assert migrate["restart"] == "no" and migrate["command"] == ["migrate"]
    assert migrate["healthcheck"] == {"disable": True}  # a one-shot serves no /healthz
    # The proxy waits for healthy bots and sends nothing to one that says it is stopping.
    assert {name: dep["condition"] for name, dep in services["caddy"]["depends_on"].items()} == {
        "bot1": "service_healthy",
        "bot2": "service_healthy",
    }
    caddyfile = (REPO / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    assert re.search(r"^\s*health_uri /healthz$", caddyfile, flags=re.MULTILINE)


def test_rolling_upgrade_migrates_then_restarts_one_instance_at_a_time() -> None:
    import subprocess

    script = REPO / "deploy" / "rolling-upgrade.sh"
    assert script.stat().st_mode & 0o111, "not executable"
    subprocess.run(["sh", "-n", str(script)], check=True)  # the shell's syntax check
    commands = [
        line.strip()
        for line in script.read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("docker compose")
    ]
    assert commands[0] == "docker compose build"
    assert commands[1] == "docker compose run --rm --no-deps migrate"
    # One `up` in a loop over the instances, each waited for (healthy) before the next.
    restart = commands[2]
    assert restart.startswith("docker compose up -d --no-deps --wait ")
    assert "for instance in bot1 bot2; do" in script.read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "deploy/rolling-upgrade.sh" in readme


def test_systemd_stop_outlasts_the_shutdown_timeout() -> None:
    from bot.config import Settings

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((REPO / "deploy" / "consultbot.service").read_text(encoding="utf-8"))
    shutdown = Settings.model_fields["shutdown_timeout_seconds"].default
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert _seconds(unit["Service"]["TimeoutStopSec"]) > shutdown
