"""The hash chain, its verification, and the history and report renderers."""
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _changelog, _runinfo

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


def test_a_run_judged_at_an_injected_time_says_so_in_the_history():
    change = _runinfo.change_from({"change_id": "CHG-9", "deploy_window_now": "2026-12-08T10:00:00+01:00"})
    assert change == {"change_id": "CHG-9", "window_now": "2026-12-08T10:00:00+01:00"}
    text = _changelog.render_history([dict(record(1), change=change)])
    assert "- Window judged at the injected time 2026-12-08T10:00:00+01:00, not the clock" in text


def cli(*args):
    return subprocess.run([sys.executable, CLI] + list(args), capture_output=True, text=True, check=False)


def anchor_at(log, seq):
    """A host history line as the rollout writes it, for record ``seq`` of the log."""
    digest = _changelog.read_records(str(log))[seq - 1]["record_sha256"] if seq else _changelog.GENESIS
    return json.dumps({"action": "changelog_anchor", "seq": seq, "sha256": digest, "run_id": "later"})


def reseal(records):
    """What an owner who knows the format does after cutting records: recompute every digest."""
    out, prev = [], _changelog.GENESIS
    for index, item in enumerate(records, start=1):
        body = {key: value for key, value in item.items() if key not in ("seq", "prev_sha256", "record_sha256")}
        sealed = _changelog.seal(body, index, prev)
        out.append(_changelog.canonical(sealed))
        prev = sealed["record_sha256"]
    return "\n".join(out) + ("\n" if out else "")


@pytest.mark.parametrize("tamper, text", [
    pytest.param(lambda log: log.write_text("\n".join(lines(log)[:2]) + "\n"),
                 "says the log had record 3 (sha256 ", id="tail-cut"),
    pytest.param(lambda log: log.write_text(""), "but it ends at record 0: records were cut off its end (the log is "
                 "empty)", id="emptied"),
    pytest.param(lambda log: log.write_text(reseal(
        [dict(r, outcome="failed") for r in _changelog.read_records(str(log))])),
        "the log was rewritten or resealed after that anchor was taken", id="resealed"),
])
def test_anchors_kept_elsewhere_catch_what_the_chain_cannot(log, tmp_path, tamper, text):
    history = tmp_path / "app01-history.jsonl"
    history.write_text('{"action": "stage", "release_id": "r3"}\n' + anchor_at(log, 3) + "\n")
    assert cli("verify", str(log), "--anchors", str(history)).returncode == 0
    tamper(log)
    # The chain alone still looks intact: that is what the anchors are for.
    assert _changelog.verify(str(log))[0] is True
    result = cli("verify", str(log), "--anchors", str(history))
    assert result.returncode == 1, result.stdout
    assert "ANCHOR DISAGREES: the anchor in %s, line 2" % history in result.stdout and text in result.stdout, \
        result.stdout


def test_webhook_payloads_and_a_job_output_are_anchors_too(log, tmp_path):
    head = _changelog.head(str(log))
    payloads = tmp_path / "webhooks.jsonl"
    payloads.write_text(json.dumps({"event": "ended", "run_id": "run-4", "changelog_head": head}) + "\n")
    assert _changelog.anchors_in(payloads.read_text().splitlines(), "hooks") == [
        {"seq": 3, "sha256": head["sha256"], "where": "hooks (ended event of run run-4), line 1"}]
    result = cli("verify", str(log), "--anchors", str(payloads), "--anchor", "2:" + _changelog.read_records(str(log))[1][
        "record_sha256"])
    assert result.returncode == 0 and "2 anchors agree with the log (up to record 3)" in result.stdout
    assert cli("verify", str(log), "--anchor", "twelve").returncode != 0
    log.write_text("\n".join(lines(log)[:1]) + "\n")
    result = cli("verify", str(log), "--anchors", str(payloads))
    assert result.returncode == 1 and "(ended event of run run-4)" in result.stdout


def test_the_head_is_published_to_the_process_for_the_rollout_and_notify(log, monkeypatch):
    monkeypatch.delenv(_changelog.HEAD_ENV, raising=False)
    assert _changelog.published_head() is None
    _changelog.publish_head(_changelog.head(str(log)))
    assert _changelog.published_head()["seq"] == 3
    assert _changelog.head(str(log.parent / "missing.jsonl")) == {"seq": 0, "sha256": _changelog.GENESIS}
    monkeypatch.setenv(_changelog.HEAD_ENV, "garbage")
    assert _changelog.published_head() is None
