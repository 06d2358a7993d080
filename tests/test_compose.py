"""compose.yaml, checked without a container engine: parsed, each service's command is a real
``spacescribe`` command with a real role set, each health check hits a real route or runs a
real command, the services share nothing but PostgreSQL; and the commands the services run
are run here (the several-machines drill runs the app and worker commands too)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml

from bot.cli import app as cli_app
from bot.runtime import parse_roles
from core.config import ROOT
from core.context import Context
from tests.test_cli import CLI, _env, _free_port

COMPOSE = ROOT / "compose.yaml"
VAR = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def service(name: str) -> dict[str, Any]:
    return dict(compose()["services"][name])


def command_args(name: str) -> list[str]:
    """A service's command without the program name: what to give ``spacescribe``."""
    cmd = service(name)["command"]
    assert cmd[0] == "spacescribe", cmd
    return list(cmd[1:])


def _parse(args: list[str]) -> Any:
    """Parse ``spacescribe <args>`` as the real CLI would (its click context), without
    running it: an unknown command or option raises."""
    group: Any = typer.main.get_command(cli_app)
    name, *rest = args
    command = group.get_command(group.context_class(group, info_name="spacescribe"), name)
    assert command is not None, f"spacescribe has no command {name!r}"
    return command.make_context(name, rest)


def test_every_command_is_a_real_spacescribe_command_and_role_set() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "app", "worker"}
    roles: dict[str, list[str]] = {}
    for name in ("app", "worker"):
        parsed = _parse(command_args(name))
        assert parsed.info_name == "run"
        roles[name] = parse_roles(parsed.params["roles"])
    # one bots+web+scheduler service; workers only work, and never migrate (the app does)
    assert roles == {"app": ["bots", "web", "scheduler"], "worker": ["worker"]}
    assert _parse(command_args("app")).params["no_migrate"] is False
    assert _parse(command_args("worker")).params["no_migrate"] is True
    assert services["worker"]["deploy"]["replicas"] >= 2


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_health_checks_hit_real_routes_and_commands(ctx: Context) -> None:
    from adapters.web.app import create_app

    pg = service("postgres")["healthcheck"]["test"]
    assert pg[:2] == ["CMD", "pg_isready"]
    probe = " ".join(service("app")["healthcheck"]["test"])
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w*)", probe)
    assert url is not None, probe
    assert url.group(1) == service("app")["ports"][0].split(":")[-1] == "8080"
    transport = httpx.ASGITransport(app=create_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as web:
        assert (await web.get(url.group(2))).status_code == 200
        assert (await web.get(url.group(2) + "-not")).status_code == 404  # the check can fail
    worker = service("worker")["healthcheck"]["test"]
    assert worker[:2] == ["CMD", "spacescribe"]
    parsed = _parse(worker[2:])
    assert parsed.info_name == "doctor" and parse_roles(parsed.params["roles"]) == ["worker"]


def test_the_services_share_nothing_but_postgresql() -> None:
    data = compose()
    app, worker = service("app"), service("worker")
    database = "postgresql://spacescribe:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"
    for s in (app, worker):
        assert s["environment"]["SPACESCRIBE_DATABASE_URL"].startswith(database)
        assert s["environment"]["SPACESCRIBE_DATABASE_URL"].endswith("@postgres:5432/spacescribe")
        assert "SPACESCRIBE_DATA_DIR" not in s["environment"]  # /app/data, the image's VOLUME
    assert app["volumes"] == ["app:/app/data"]
    assert "volumes" not in worker  # each worker container its own anonymous /app/data
    assert 'VOLUME ["/app/data"]' in (ROOT / "Dockerfile").read_text()
    assert set(data["volumes"]) == {"postgres", "app"}
    assert worker["depends_on"] == {"app": {"condition": "service_healthy"}}
    assert app["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    # no secret written into the file: every one comes from the environment (.env)
    for s in (app, worker):
        for key, value in s["environment"].items():
            if any(w in key for w in ("TOKEN", "KEY", "PASSWORD")):
                assert str(value).startswith("${"), key


def _service_env(name: str, tmp_path: Path, db_url: str, **extra: str) -> dict[str, str]:
    """The service's environment with compose's ``${VAR:-default}`` filled from defaults,
    the database and data directory of this test instead of the containers'."""
    env = {
        k: VAR.sub(lambda m: m.group(2) or "", str(v))
        for k, v in service(name)["environment"].items()
    }
    env.pop("SPACESCRIBE_DATABASE_URL")
    env["SPACESCRIBE_PAYMENTS__PAY_TO"] = "0x" + "12" * 20
    env["SPACESCRIBE_PAYMENTS__NETWORK"] = "base"
    return _env(tmp_path, db_url, **env, **extra)


def test_the_services_commands_run(tmp_path: Path, pg_database: str) -> None:
    """The app's command serves its health check's route; the worker's command starts and
    works beside it; the worker's health check passes."""
    port = _free_port()
    app_env = _service_env(
        "app", tmp_path / "app", pg_database, SPACESCRIBE_WEB__HOST="127.0.0.1",
        SPACESCRIBE_WEB__PORT=str(port),
    )  # fmt: skip
    worker_env = _service_env("worker", tmp_path / "worker", pg_database)
    app = subprocess.Popen(
        [*CLI, *command_args("app")], env=app_env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    worker = None
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert app.poll() is None and time.monotonic() < deadline, "the app never served"
                time.sleep(0.3)
        assert r.status_code == 200
        worker = subprocess.Popen(
            [*CLI, *command_args("worker")], env=worker_env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        check = service("worker")["healthcheck"]["test"]
        done = subprocess.run(
            [*CLI, *check[2:]], env=worker_env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "database" in done.stdout and "telegram" not in done.stdout
        time.sleep(2)
        assert worker.poll() is None, worker.communicate()[0]
    finally:
        for p in (worker, app):
            if p is not None and p.poll() is None:
                p.terminate()
        outputs = [p.communicate(timeout=60)[0] for p in (worker, app) if p is not None]
    assert "Worker: on" in outputs[0] and "Web: on" in outputs[1], outputs
    assert "Telegram: off" in outputs[1]  # no token in this test: said so, the rest runs
