"""The deployment files are not run by the tests, but they must hold together: the compose file
parses and runs two webhook instances behind the proxy with PostgreSQL and Redis, the image is
built from requirements.lock, the systemd unit runs the bot."""

from __future__ import annotations

import configparser
import re

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


def test_dockerfile_installs_the_lock_and_copies_what_exists() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY requirements.lock" in dockerfile
    assert "pip install -r /tmp/requirements.txt" in dockerfile
    for source in re.findall(r"^COPY (\S+) ", dockerfile, flags=re.MULTILINE):
        assert (REPO / source).exists(), source
    # The packages left out of the image are test tools only, and all in the lock.
    left_out = re.search(r"\^\(([^)]*)\)==", dockerfile)
    assert left_out is not None
    lock = {
        line.split("==")[0].lower()
        for line in (REPO / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    excluded = set(left_out.group(1).lower().split("|"))
    assert excluded <= lock
    assert not excluded & {"aiogram", "sqlalchemy", "asyncpg", "redis", "matplotlib", "packaging"}
    assert 'ENTRYPOINT ["python", "-m", "consultbot"]' in dockerfile and 'CMD ["run"]' in dockerfile


def test_systemd_unit_runs_the_bot_and_restarts_it() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((REPO / "deploy" / "consultbot.service").read_text(encoding="utf-8"))
    service = unit["Service"]
    assert service["ExecStart"].endswith("/.venv/bin/consultbot run")
    assert service["Restart"] == "always"
    assert service["EnvironmentFile"].endswith("/.env")
    assert unit["Install"]["WantedBy"] == "multi-user.target"
