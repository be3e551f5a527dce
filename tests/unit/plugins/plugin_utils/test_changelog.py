"""The hash chain, its verification, and the history and report renderers."""
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _changelog

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
CLI = os.path.join(ROOT, "tools", "conveyor-changelog")


def record(n, outcome="succeeded", **extra):
    base = {"run_id": "run-%d" % n, "kind": "deploy", "application": "sample", "environment": "lab",
            "version": "1.%d.0" % n, "release_id": "r%d" % n, "outcome": outcome,
            "actor": {"user": "alice", "controller": "ctl", "awx": {"job_id": "42", "launched_by": "bob"}},
            "change": {"change_id": "CHG-%d" % n, "approver": "carol"},
            "started_at": "2026-11-27T10:00:0%dZ" % n, "finished_at": "2026-11-27T10:00:2%dZ" % n, "duration_s": 20,
            "hosts": {"app01": {"outcome": "deployed", "from": "1.0.0", "to": "1.%d.0" % n,
                                "phases": [{"name": "stage", "start": "2026-11-27T10:00:02Z",
                                            "end": "2026-11-27T10:00:05Z", "failed": False},
                                           {"name": "verify", "start": "2026-11-27T10:00:06Z",
                                            "end": "2026-11-27T10:00:09Z", "failed": outcome == "failed"}]}},
            "failures": []}
    base.update(extra)
    return base


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "log" / "changelog.jsonl"
    sink = _changelog.ChangeLogFile(str(path))
    assert sink.problem() is None
    for n in range(1, 4):
        sink.append(record(n))
    return path


def lines(path):
    return path.read_text().splitlines()


def test_chain_links_each_record_to_the_one_before(log):
    records = _changelog.read_records(str(log))
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[0]["prev_sha256"] == _changelog.GENESIS
    assert records[1]["prev_sha256"] == records[0]["record_sha256"]
    assert records[2]["prev_sha256"] == records[1]["record_sha256"]
    assert _changelog.verify(str(log)) == (True, 3, "chain intact: 3 records, last sha256 %s" % records[2]["record_sha256"])


def test_an_edited_record_is_named(log):
    content = lines(log)
    content[1] = content[1].replace('"outcome":"succeeded"', '"outcome":"failed"')
    log.write_text("\n".join(content) + "\n")
    ok, count, message = _changelog.verify(str(log))
    assert not ok and count == 1
    assert "record 2 (line 2, run run-2) was edited" in message


def test_an_edited_record_with_a_recomputed_digest_breaks_the_next_link(log):
    records = _changelog.read_records(str(log))
    records[1]["version"] = "9.9.9"
    records[1]["record_sha256"] = _changelog.record_digest(records[1])
    log.write_text("".join(_changelog.canonical(r) + "\n" for r in records))
    ok, _count, message = _changelog.verify(str(log))
    assert not ok and "record 3 (line 3, run run-3) does not follow" in message


def test_a_removed_record_is_found(log):
    content = lines(log)
    del content[1]
    log.write_text("\n".join(content) + "\n")
    ok, _count, message = _changelog.verify(str(log))
    assert not ok and "record 3 (line 2, run run-3) is out of place: expected record 2" in message


def test_reordered_records_are_found(log):
    content = lines(log)
    content[0], content[1] = content[1], content[0]
    log.write_text("\n".join(content) + "\n")
    ok, _count, message = _changelog.verify(str(log))
    assert not ok and "record 2 (line 1, run run-2) is out of place" in message


def test_a_line_that_is_not_json_is_found(log):
    with open(log, "a") as handle:
        handle.write("{not json\n")
    ok, count, message = _changelog.verify(str(log))
    assert not ok and count == 3 and "line 4 is not JSON" in message


@pytest.mark.parametrize("garbage", ["garbage\n", '{"seq": 4, "run_id": "cut short', "\xff\xfe\n"],
                         ids=["text", "half-written", "not-utf8"])
def test_a_damaged_last_line_is_named_before_the_run_and_refused_at_append(log, garbage):
    with open(log, "a", encoding="latin-1") as handle:
        handle.write(garbage)
    sink = _changelog.ChangeLogFile(str(log))
    problem = sink.problem()
    assert problem.startswith("line 4 of %s, the last one, is not a sealed record" % log), problem
    assert "tools/conveyor-changelog verify" in problem
    with pytest.raises(_changelog.ChainError, match="line 4 of"):
        sink.append(record(4))


def test_appends_continue_the_chain_across_writers(log):
    _changelog.ChangeLogFile(str(log)).append(record(4))
    assert _changelog.verify(str(log))[:2] == (True, 4)


def test_an_unwritable_place_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    problem = _changelog.ChangeLogFile(str(blocker / "sub" / "log.jsonl")).problem()
    assert problem and "cannot create the directory" in problem


def test_history_is_newest_first_and_names_who_and_outcome(log):
    text = _changelog.render_history(_changelog.read_records(str(log)))
    heads = [line for line in text.splitlines() if line.startswith("## ")]
    assert heads[0] == "## 2026-11-27 10:00 UTC - deploy 1.3.0 in lab - SUCCEEDED"
    assert heads[-1].startswith("## 2026-11-27 10:00 UTC - deploy 1.1.0")
    assert "- By: alice@ctl (AWX job 42, launched by bob)" in text
    assert "- Change: CHG-3, approved by carol" in text


def test_report_draws_a_bar_per_phase_and_failures_in_red():
    page = _changelog.render_report(dict(record(1, outcome="failed"), seq=7,
                                         failures=[{"host": "app01", "task": "Gate <x>", "msg": "500"}]))
    assert page.count('<rect class="phase') == 2
    assert '<rect class="phase failed"' in page and _changelog.FAILED_COLOUR in page
    assert "Gate &lt;x&gt;" in page and "<x>" not in page
    assert "change log record 7" in page


def test_cli_verifies_renders_and_fails_on_a_broken_chain(log, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, CLI] + list(args), capture_output=True, text=True, check=False)
    result = run("verify", str(log))
    assert result.returncode == 0 and "chain intact: 3 records" in result.stdout
    out = tmp_path / "report.html"
    assert run("report", str(log), "--run", "run-2", "-o", str(out)).returncode == 0
    assert "deploy 1.2.0 to lab" in out.read_text()
    assert "## 2026-11-27" in run("history", str(log)).stdout
    assert json.loads(run("show", str(log)).stdout)["seq"] == 3
    log.write_text(log.read_text().replace("alice", "mallory", 1))
    result = run("verify", str(log))
    assert result.returncode == 1 and result.stdout.startswith("BROKEN: record 1 (line 1, run run-1) was edited")
