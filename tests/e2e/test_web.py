"""The dashboard's HTTP API and security, against a real ``bassi-schedd web`` process and a real
daemon, over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Callable
from pathlib import Path

from support import Start, runs, wait_for
from support.web import SSEReader, WebProc

from bassi_schedd.config.paths import Home

Web = Callable[..., WebProc]

# Prints a line, then waits for a gate file before the next: the test decides when lines appear.
GATED = """
description = "Gated <script>alert(1)</script>"
schedule = "0 0 1 1 *"
timezone = "UTC"
command = ["/bin/sh", "-c", "echo one; while [ ! -e {gate1} ]; do sleep 0.05; done; echo two; \
while [ ! -e {gate2} ]; do sleep 0.05; done; echo three; exit 3"]
env = {{ API_SECRET = "hunter2-do-not-show" }}
"""
QUICK = """
schedule = "0 0 1 1 *"
timezone = "UTC"
overlap = "allow"   # three quick triggers are three runs, none skipped
enabled = true      # flipped by the dashboard
command = ["/bin/sh", "-c", "echo quick"]
"""


def finished(home: Home, task: str) -> list[dict[str, object]]:
    return [r for r in runs(home, task) if r["status"] not in ("queued", "running")]


def test_every_endpoint_answers_with_data_from_the_daemon(
    home: Home, write_task, daemon: Start, web: Web
) -> None:
    write_task("quick", QUICK)
    d = daemon()
    d.wait_ready()
    w = web()
    assert w.get("/healthz", auth=False).json() == {"ok": True}
    status = w.get("/api/status").json()
    assert status["daemon"]["running"] is True and status["daemon"]["pid"] == d.pid
    for _ in range(3):
        assert w.post("/api/tasks/quick/trigger").status == 202
    wait_for(lambda: len(finished(home, "quick")) == 3, 60)
    tasks = w.get("/api/tasks").json()
    assert [t["name"] for t in tasks] == ["quick"] and tasks[0]["last_status"] == "success"
    one = w.get("/api/tasks/quick").json()
    assert one["state"] == "enabled" and len(one["next_runs"]) == 5
    assert one["stats_30d"]["finished"] == 3 and one["stats_30d"]["success_rate"] == 1.0
    page1 = w.get("/api/tasks/quick/runs?limit=2").json()["runs"]
    page2 = w.get(f"/api/tasks/quick/runs?limit=2&before={page1[-1]['run_id']}").json()["runs"]
    ids = [r["run_id"] for r in page1 + page2]
    assert ids == [r["run_id"] for r in reversed(runs(home, "quick"))]
    run = w.get(f"/api/runs/{ids[0]}").json()
    assert run["trigger"] == "manual" and run["status"] == "success" and "result" in run
    out = w.get(f"/api/runs/{ids[0]}/output?offset=2")
    assert out.body == b"ick\n" and out.headers["x-next-offset"] == "6"
    # errors: one sentence as JSON, with the right status
    assert w.get("/api/tasks/nope").status == 404
    assert "no task named 'nope'" in w.get("/api/tasks/nope").json()["error"]
    assert w.get("/api/runs/nope").status == 404
    assert w.get("/api/tasks/quick/runs?limit=zero").status == 400
    assert w.get("/api/tasks/quick/runs?limit=0").status == 400
    assert w.get("/api/nothing").json() == {"error": "there is no page /api/nothing"}
    assert w.post("/api/tasks/nope/trigger").status == 404
    assert w.get("/").status == 200 and w.get(f"/runs/{ids[0]}").status == 200
    assert w.get("/tasks/quick").status == 200
    assert w.stop() == 0
    assert d.stop() == 0


def test_token_cookie_login_and_headers(home: Home, web: Web) -> None:
    w = web()
    token_file = home.root / "web.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == w.token
    assert f"open {w.url}?token={w.token}" in w.output()
    denied = w.get("/api/tasks", auth=False)
    assert denied.status == 401 and "Bearer" in denied.json()["error"]
    assert w.get("/", auth=False).status == 401
    assert w.get("/api/tasks", auth=False, headers={"Authorization": "Bearer wrong"}).status == 401
    assert w.get("/?token=wrong", auth=False).status == 401
    login = w.get(f"/?token={w.token}", auth=False)
    assert login.status == 303 and login.headers["location"] == "/"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = cookie.split(";")[0]
    page = w.get("/", auth=False, headers={"Cookie": jar})
    assert page.status == 200 and "<h1>Tasks</h1>" in page.text
    assert w.get("/api/tasks", auth=False, headers={"Cookie": "bassi_session=x"}).status == 401
    for r in (page, denied):
        assert r.headers["content-security-policy"] == "default-src 'self'"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
    # a second start keeps the same token
    w.stop()
    w2 = web()
    assert w2.token == w.token


def test_foreign_host_and_cross_origin_post_are_refused(home: Home, write_task, web: Web) -> None:
    path = write_task("quick", QUICK)
    before = path.read_bytes()
    w = web()
    evil = w.get("/api/tasks", headers={"Host": "evil.example"})
    assert evil.status == 403 and "127.0.0.1" in evil.json()["error"]
    assert w.get("/healthz", headers={"Host": f"evil.example:{w.port}"}).status == 403
    assert w.get("/api/tasks", headers={"Host": "127.0.0.1:1"}).status == 403
    assert w.get("/api/tasks", headers={"Host": f"localhost:{w.port}"}).status == 200
    cross = w.post("/api/tasks/quick/pause", headers={"Origin": "http://evil.example"})
    assert cross.status == 403 and path.read_bytes() == before
    null = w.post("/api/tasks/quick/pause", headers={"Origin": "null"})
    assert null.status == 403 and path.read_bytes() == before
    own = w.post("/api/tasks/quick/pause", headers={"Origin": f"http://127.0.0.1:{w.port}"})
    assert own.status == 200 and own.json()["changed"] is True
    # byte-preserving, as `pause` does: only the value changed
    assert path.read_bytes() == before.replace(b"= true      #", b"= false      #")
    assert w.post("/api/tasks/quick/resume").json()["enabled"] is True
    assert path.read_bytes() == before


def test_output_stream_is_live_resumes_from_last_event_id_and_ends_with_status(
    home: Home, write_task, daemon: Start, web: Web, tmp_path: Path
) -> None:
    gate1, gate2 = tmp_path / "gate1", tmp_path / "gate2"
    write_task("gated", GATED.format(gate1=gate1, gate2=gate2))
    d = daemon()
    d.wait_ready()
    w = web()
    assert w.post("/api/tasks/gated/trigger").status == 202
    run_id = str(wait_for(lambda: runs(home, "gated") and runs(home, "gated")[0]["run_id"]))
    conn = w.connection()
    conn.request("GET", f"/api/runs/{run_id}/stream", headers=_auth(w))
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("content-type", "").startswith("text/event-stream")
    sse = SSEReader(resp)
    first = sse.next_event()
    # delivered while the command is still waiting at the gate: live, not after the end
    assert first["data"] == "one" and runs(home, "gated")[0]["status"] == "running"
    gate1.touch()
    second = sse.next_event()
    assert second["data"] == "two" and int(second["id"]) == len(b"one\ntwo\n")
    conn.close()  # the browser goes away...
    gate2.touch()  # ...and a line is printed meanwhile
    wait_for(lambda: finished(home, "gated"), 30)
    conn = w.connection()
    conn.request(
        "GET", f"/api/runs/{run_id}/stream", headers={**_auth(w), "Last-Event-ID": second["id"]}
    )
    sse = SSEReader(conn.getresponse())
    third = sse.next_event()
    assert third["data"] == "three" and int(third["id"]) == len(b"one\ntwo\nthree\n")
    end = sse.next_event()
    assert end["event"] == "end" and json.loads(end["data"]) == {"status": "failed", "exit_code": 3}
    conn.close()
    bad = w.get(f"/api/runs/{run_id}/stream", headers={"Last-Event-ID": "x"})
    assert bad.status == 400
    # the run page shows the output escaped and never an env value
    task_page = w.get("/tasks/gated").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in task_page and "<script>alert" not in task_page
    assert "hunter2" not in task_page and "hunter2" not in w.get("/api/tasks/gated").text
    assert d.stop() == 0


def test_events_stream_reports_run_start_and_end(
    home: Home, write_task, daemon: Start, web: Web
) -> None:
    write_task("quick", QUICK)
    d = daemon()
    d.wait_ready()
    w = web()
    conn = w.connection()
    conn.request("GET", "/api/events", headers=_auth(w))
    sse = SSEReader(conn.getresponse())
    assert "retry" in sse.next_event()  # the stream is open and has taken its baseline
    assert w.post("/api/tasks/quick/trigger").status == 202
    start, end = sse.next_event(), sse.next_event()
    assert start["event"] == "run.start" and json.loads(start["data"])["task"] == "quick"
    body = json.loads(end["data"])
    assert end["event"] == "run.end" and body["status"] == "success" and body["exit_code"] == 0
    assert body["run_id"] == json.loads(start["data"])["run_id"] == runs(home, "quick")[0]["run_id"]
    conn.close()
    assert d.stop() == 0


def test_trigger_without_a_daemon_is_409_and_unknown_runs_are_404(
    home: Home, write_task, web: Web
) -> None:
    write_task("quick", QUICK)
    w = web()
    r = w.post("/api/tasks/quick/trigger")
    assert r.status == 409 and "no daemon is running" in r.json()["error"]
    assert w.post("/api/runs/nope/stop").status == 404


def test_non_loopback_host_and_busy_port_are_refused(home: Home, web: Web) -> None:
    w = web("--host", "0.0.0.0", wait=False)
    assert w.proc.wait(timeout=30) == 2
    out = w.output().strip()
    assert (
        "not a loopback address" in out and "--allow-remote" in out and len(out.splitlines()) == 1
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        w = web("--port", str(port), wait=False)
        assert w.proc.wait(timeout=30) == 2
        assert f"port {port} on 127.0.0.1 is already in use" in w.output()
        assert "Traceback" not in w.output()


def _auth(w: WebProc) -> dict[str, str]:
    return {"Host": f"127.0.0.1:{w.port}", "Authorization": f"Bearer {w.token}"}


def test_output_stream_follows_a_file_cut_in_place(
    home: Home, write_task, daemon: Start, web: Web, tmp_path: Path
) -> None:
    gate1, gate2 = tmp_path / "gate1", tmp_path / "gate2"
    write_task("gated", GATED.format(gate1=gate1, gate2=gate2))
    d = daemon()
    d.wait_ready()
    w = web()
    assert w.post("/api/tasks/gated/trigger").status == 202
    row = wait_for(lambda: [r for r in runs(home, "gated") if r["status"] == "running"])[0]  # type: ignore[index]
    conn = w.connection()
    conn.request("GET", f"/api/runs/{row['run_id']}/stream", headers=_auth(w))
    sse = SSEReader(conn.getresponse())
    assert sse.next_event()["data"] == "one"
    # what max_output does to a long output: the file is cut in place, its tail kept
    Path(str(row["run_dir"]), "output.log").write_bytes(b"k\n")
    notice = sse.next_event()
    assert "cut to its max_output" in notice["data"] and notice["id"] == "0"
    assert sse.next_event()["data"] == "k"
    gate1.touch()
    assert sse.next_event()["data"] == "two"
    gate2.touch()
    assert sse.next_event()["data"] == "three"
    assert sse.next_event()["event"] == "end"
    conn.close()
    assert d.stop() == 0


def test_damaged_state_db_bad_method_and_unsafe_token_are_one_sentence(
    home: Home, write_task, web: Web
) -> None:
    write_task("quick", QUICK)
    home.state_db.write_bytes(b"this is not a database" * 100)
    w = web()
    r = w.get("/api/tasks")
    assert r.status == 409 and str(home.state_db) in r.json()["error"]
    assert w.get("/").status == 409
    assert w.get("/healthz", auth=False).status == 200
    r = w.post("/api/tasks")
    assert r.status == 405 and r.json() == {"error": "POST is not allowed on /api/tasks"}
    w.stop()
    token = home.root / "web.token"
    token.chmod(0o644)
    w = web(wait=False)
    assert w.proc.wait(timeout=30) == 1
    out = w.output().strip()
    assert "readable by others" in out and f"chmod 600 {token}" in out
    assert "Traceback" not in out


def test_stop_ends_a_running_run_cancelled(
    home: Home, write_task, daemon: Start, web: Web, tmp_path: Path
) -> None:
    gate1, gate2 = tmp_path / "gate1", tmp_path / "gate2"
    write_task("gated", GATED.format(gate1=gate1, gate2=gate2))
    (home.root / "schedd.toml").write_text('kill_grace = "1s"\n')
    d = daemon()
    d.wait_ready()
    w = web()
    assert w.post("/api/tasks/gated/trigger").status == 202
    row = wait_for(lambda: [r for r in runs(home, "gated") if r["status"] == "running"])[0]  # type: ignore[index]
    run_id = str(row["run_id"])
    conn = w.connection()
    conn.request("GET", f"/api/runs/{run_id}/stream", headers=_auth(w))
    sse = SSEReader(conn.getresponse())
    assert sse.next_event()["data"] == "one"
    cross = w.post(f"/api/runs/{run_id}/stop", headers={"Origin": "http://evil.example"})
    assert cross.status == 403 and runs(home, "gated")[0]["status"] == "running"
    r = w.post(f"/api/runs/{run_id}/stop")
    assert r.status == 202 and r.json()["stopping"] == [run_id], r.text
    end = sse.next_event()
    assert end["event"] == "end" and json.loads(end["data"])["status"] == "cancelled"
    conn.close()
    assert runs(home, "gated")[0]["status"] == "cancelled"
    again = w.post(f"/api/runs/{run_id}/stop")
    assert again.status == 409 and "not running" in again.json()["error"]
    assert d.stop() == 0


def test_open_hands_the_login_link_to_the_browser(home: Home, web: Web, tmp_path: Path) -> None:
    opened = tmp_path / "opened"
    # Python's webbrowser runs $BROWSER with %s replaced by the URL
    w = web("--open", env={"BROWSER": f"/bin/sh -c 'echo %s > {opened}'"})
    wait_for(lambda: opened.exists() and opened.read_text().strip())
    assert opened.read_text().strip() == f"{w.url}?token={w.token}"


def test_allow_remote_listens_beyond_loopback_and_accepts_any_host(home: Home, web: Web) -> None:
    w = web("--host", "0.0.0.0", "--allow-remote")
    assert w.url.startswith("http://0.0.0.0:")
    r = w.get("/api/tasks", headers={"Host": f"box.lan:{w.port}"})
    assert r.status == 200
    assert w.get("/api/tasks", auth=False, headers={"Host": f"box.lan:{w.port}"}).status == 401
