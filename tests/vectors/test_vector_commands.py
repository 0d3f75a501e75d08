"""``timber vectors ...`` run in-process with click's CliRunner on a real SQLite file and the offline model."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import timber_core

from .conftest import start

Invoke = Callable[..., Result]
APPLE = "Apple into earnings"


@pytest.fixture
def timber(model_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    """``timber`` in-process on a migrated SQLite file holding one research session (its index work pending)."""
    from timber_core import cli as cli_module
    from timber_core.services.persistence import user_service

    url = f"sqlite:///{tmp_path / 'timber.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TIMBER_VECTOR_DRAIN", "off")
    k = start(url)
    ada = user_service.create_user("ada@example.com", "ada")
    with timber_core.app_context("grove"):
        k.services["reports"].start_research(ada, "AAPL", APPLE)
    k.close()
    timber_core.shutdown()
    yield lambda *args: CliRunner().invoke(cli_module.cli, list(args), catch_exceptions=False)
    timber_core.shutdown()
    timber_core.shutdown()


def test_sync_applies_the_pending_work(timber: Invoke) -> None:
    result = timber("vectors", "sync")
    assert (result.exit_code, result.output) == (0, "applied 1, failed 0 (points upserted 1, deleted 0)\n")


def test_worker_once_drains_due_work_once(timber: Invoke) -> None:
    result = timber("vectors", "worker", "--once")
    assert (result.exit_code, result.output) == (0, "applied 1, failed 0 (points upserted 1, deleted 0)\n")


def test_worker_stops_on_sigterm_and_says_what_it_did(timber: Invoke) -> None:
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))  # the worker's handler sets its stop event
    timer.start()
    try:
        result = timber("vectors", "worker", "--interval", "0.05")
    finally:
        timer.cancel()
    assert (result.exit_code, result.output.splitlines()) == (0, [
        "applied 1, failed 0 (points upserted 1, deleted 0)", "worker stopped: applied 1, failed 0"])


def test_worker_refuses_an_interval_that_is_not_a_number(timber: Invoke) -> None:
    result = timber("vectors", "worker", "--interval", "nan")
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        2, "Error: Invalid value for '--interval': 'nan' is not a number of seconds from 0.01 to 86400.")


def test_status_prints_one_table_then_the_outbox(timber: Invoke) -> None:
    result = timber("vectors", "status")
    assert (result.exit_code, result.output.splitlines()) == (0, [
        "collection         app     model            rows  points  pending  failed  index",
        "-----------------  ------  ---------------  ----  ------  -------  ------  -------",
        "orders             canopy  Order            0     0       0        0       ok",
        "research_reports   grove   ResearchReport   0     0       0        0       ok",
        "research_sessions  grove   ResearchSession  1     0       1        0       DIFFERS",
        "outbox: 1 pending, 0 failed",
        "index differs from the database in research_sessions (pending work may close the gap: `timber vectors "
        "sync`); compare ids and content with `timber vectors verify`, fix with `timber vectors verify --repair`",
    ])


def test_status_json_counts_rows_points_and_pending(timber: Invoke) -> None:
    report = json.loads(timber("vectors", "status", "--json").output)
    assert [(c["collection"], c["rows"], c["points"], c["pending"]) for c in report["collections"]] == [
        ("orders", 0, 0, 0), ("research_reports", 0, 0, 0), ("research_sessions", 1, 0, 1)]


def test_verify_finds_the_missing_point_and_repair_writes_it(timber: Invoke) -> None:
    found = timber("vectors", "verify", "--model", "ResearchSession")
    assert (found.exit_code, found.stdout) == (1, (
        "collection         rows  points  state\n"
        "-----------------  ----  ------  -------------------------------\n"
        "research_sessions  1     0       1 missing, 0 orphan(s), 0 stale\n"))
    assert found.stderr == "run `timber vectors verify --repair` to make the index equal the database\n"
    repaired = timber("vectors", "verify", "--repair", "--json")
    assert repaired.exit_code == 0, repaired.output
    assert [d["collection"] for d in json.loads(repaired.stdout)] == ["orders", "research_reports", "research_sessions"]


def test_reindex_rebuilds_one_model(timber: Invoke) -> None:
    result = timber("vectors", "reindex", "--model", "ResearchSession")
    assert (result.exit_code, result.output) == (0, "reindexed research_sessions: 1 points\n")


def test_an_unknown_model_is_one_error_line(timber: Invoke) -> None:
    result = timber("vectors", "reindex", "--model", "Trade")
    assert result.exit_code == 1
    assert len(result.output.splitlines()) == 1 and result.output.startswith("Error: ")
    assert "Trade" in result.output


def test_vector_commands_refuse_when_vector_search_is_off(timber: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    from timber_core.config import TimberConfig

    monkeypatch.setenv("ENABLE_VECTOR_SEARCH", "false")
    TimberConfig.clear_cache()
    result = timber("vectors", "sync")
    assert (result.exit_code, result.output) == (
        1, "Error: vector search is disabled (ENABLE_VECTOR_SEARCH=false); nothing to do\n")


def test_vector_commands_run_with_no_app_in_the_platform_context(timber: Invoke) -> None:
    assert timber("vectors", "sync").exit_code == 0
    assert timber_core.get_kernel().app_name is None
