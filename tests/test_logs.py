"""Logs as JSON lines on request: each line one object, with the request id of the call it was
written in, fields given with `extra=`, and the traceback of an exception."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from clearpoint.logfmt import REQUEST_ID, JsonFormatter

from tests.processes import free_port
from tests.test_readme_walk import _wait_serving


def _line(record: logging.LogRecord) -> dict[str, object]:
    parsed = json.loads(JsonFormatter().format(record))
    assert isinstance(parsed, dict)
    return parsed


def test_a_line_is_one_json_object_with_the_request_id() -> None:
    record = logging.makeLogRecord(
        {"name": "clearpoint.x", "levelname": "WARNING", "msg": "scan %s refused", "args": ("s-1",), "created": 0.5}
    )
    assert _line(record) == {
        "time": "1970-01-01T00:00:00.500Z",
        "level": "warning",
        "logger": "clearpoint.x",
        "message": "scan s-1 refused",
    }
    token = REQUEST_ID.set("call-7")
    try:
        record.__dict__["agent_id"] = "agt_1"
        record.__dict__["odd"] = object()
        line = _line(record)
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "call-7" and line["agent_id"] == "agt_1" and str(line["odd"]).startswith("<object")


def test_an_exception_and_awkward_text_stay_one_line() -> None:
    try:
        raise ValueError('bad "quote"\nand a newline')
    except ValueError:
        record = logging.makeLogRecord({"msg": "failed: \u00e9\n\x1b[31m", "exc_info": sys.exc_info()})
    text = JsonFormatter().format(record)
    assert "\n" not in text
    parsed = json.loads(text)
    assert parsed["message"] == "failed: \u00e9\n\x1b[31m" and "ValueError" in parsed["exception"]


def test_a_platform_started_with_json_logs_writes_only_json_lines(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARPOINT_")}
    env.update(
        CLEARPOINT_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CLEARPOINT_MASTER_KEY_FILE=str(tmp_path / "master.key"),
        CLEARPOINT_LOG_FORMAT="json",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "clearpoint.cli", "platform", "serve", "--listen", f"127.0.0.1:{port}"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_serving(port)
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any("schema upgraded" in entry["message"] for entry in logs)
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in logs)
    others = [line for line in err.splitlines() if not line.startswith("{")]
    assert all(line.startswith(("clearpoint platform serving on", "stopping:")) for line in others), others
