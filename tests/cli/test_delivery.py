"""The container files and CI workflow match the CLI (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from conveyor.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def test_dockerfile_runs_the_service_as_a_non_root_user_with_a_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert re.search(r"^USER conveyor$", text, re.M)
    assert "HEALTHCHECK" in text and "/health" in text
    entry = re.search(r'^ENTRYPOINT \["conveyor", "--config", "([^"]+)"\]', text, re.M)
    cmd = re.search(r'^CMD \["(\w+)", "--host", "0.0.0.0"\]', text, re.M)
    assert entry and cmd and cmd.group(1) == "serve" and "serve" in commands()
    assert 'VOLUME ["/app/workspace"' in text


def test_compose_runs_the_api_and_a_scheduled_update_on_one_workspace():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    api, scheduler = compose["services"]["api"], compose["services"]["scheduler"]
    assert api["command"] == ["serve", "--host", "0.0.0.0"]  # reachable from the host
    assert "conveyor --config /app/conveyor.yaml update" in scheduler["command"][0]
    assert "update" in commands()
    assert api["volumes"][0].split(":")[1] == "/app/workspace"
    assert scheduler["volumes"][0] == api["volumes"][0]


def test_workflow_lints_tests_and_builds_the_image():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    steps = " ".join(str(s.get("run", "")) for job in workflow["jobs"].values()
                     for s in job["steps"])
    assert "ruff check" in steps and ".ci/run" in steps and "docker build" in steps
