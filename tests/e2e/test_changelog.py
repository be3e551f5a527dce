"""The change log and notify callbacks on real deployments: a good one and a broken build (6.6.6).

Runs after the other end-to-end files (the Makefile gives the order): it deploys over
whatever the fleet runs.
"""
import os
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT, live_versions, playbook

sys.path.insert(0, os.path.join(ROOT, "plugins", "plugin_utils"))
import _changelog  # noqa: E402  pylint: disable=wrong-import-position

CLI = [sys.executable, os.path.join(ROOT, "tools", "conveyor-changelog")]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(*args):
    """Headless Chromium with no network of its own (it would try Google's hosts)."""
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--user-data-dir=" + os.path.join(ROOT, "build", "chromium-profile")] + list(args),
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from .conftest import Webhook
    directory = tmp_path_factory.mktemp("changelog")
    hook = Webhook(str(directory))
    env = {"CONVEYOR_CHANGELOG_PATH": str(directory / "changelog.jsonl"),
           "CONVEYOR_CHANGELOG_REPORT_DIR": str(directory / "reports"),
           "CONVEYOR_NOTIFY_URL": hook.url + "/generic", "CONVEYOR_NOTIFY_SLACK_URL": hook.url + "/slack"}
    before = live_versions()
    target = "1.1.0" if "1.1.0" not in before.values() else "1.0.0"
    good = playbook("deploy.yml", "-e", "app_version=" + target, env=env)
    bad = playbook("deploy.yml", "-e", "app_version=6.6.6", env=env)
    hook.close()
    return {"dir": directory, "log": str(directory / "changelog.jsonl"), "before": before, "target": target,
            "good": good, "bad": bad, "posts": hook.received()}


def test_the_runs_themselves(runs):
    assert runs["good"].rc == 0, runs["good"].output[-3000:]
    assert runs["bad"].rc != 0
    assert "recorded as record 2" in runs["bad"].output


def test_each_run_is_one_record_with_versions_phases_and_outcomes(runs):
    good, bad = _changelog.read_records(runs["log"])
    assert (good["kind"], good["version"], good["environment"], good["application"], good["outcome"]) == \
        ("deploy", runs["target"], "lab", "sample", "succeeded")
    for host, before in runs["before"].items():
        entry = good["hosts"][host]
        assert entry["outcome"] == "deployed"
        assert (entry["from"], entry["to"]) == (before or "none", runs["target"])
        names = [phase["name"] for phase in entry["phases"]]
        for phase in ("inspect", "lock", "stage", "drain", "switch", "restart", "verify", "enable", "finish"):
            assert phase in names, (host, names)
    assert good["actor"]["user"] and good["actor"]["controller"]
    assert good["failures"] == []

    assert bad["outcome"] == "failed" and bad["rolled_back"] is True and bad["version"] == "6.6.6"
    first = sorted(bad["hosts"])[0]
    assert bad["hosts"][first]["outcome"] == "rolled_back"
    assert bad["hosts"][first]["to"] == runs["target"]
    assert any(phase["name"] == "verify" and phase["failed"] for phase in bad["hosts"][first]["phases"])
    assert any(phase["name"] == "revert" for phase in bad["hosts"][first]["phases"])
    assert {bad["hosts"][host]["outcome"] for host in bad["hosts"] if host != first} == {"not_started"}
    gate = [f for f in bad["failures"] if f["task"].startswith("Cutover | Switch, restart and gate")]
    assert gate and gate[0]["host"] == first and "answered 500" in gate[0]["msg"]


def test_the_webhooks_heard_every_event(runs):
    generic = [post["body"] for post in runs["posts"] if post["path"] == "/generic"]
    slack = [post["body"] for post in runs["posts"] if post["path"] == "/slack"]
    events = [body["event"] for body in generic]
    assert events.count("started") == 2 and events.count("ended") == 2
    assert events.count("batch_done") >= 4  # three batches for the good run, one for the broken one
    failed = [body for body in generic if body["event"] == "host_failed"]
    assert failed and "answered 500" in failed[0]["msg"]
    assert any(body["event"] == "auto_rollback" for body in generic)
    ends = [body for body in generic if body["event"] == "ended"]
    assert [body["outcome"] for body in ends] == ["succeeded", "failed"]
    assert all(body["version"] in (runs["target"], "6.6.6") and body["environment"] == "lab" for body in generic)
    assert len(slack) == len(generic) and all(set(body) == {"text", "username"} for body in slack)


def test_the_chain_verifies_and_breaks_when_a_record_is_edited(runs, tmp_path):
    result = subprocess.run(CLI + ["verify", runs["log"]], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "chain intact: 2 records" in result.stdout
    edited = tmp_path / "edited.jsonl"
    lines = open(runs["log"]).read().splitlines()
    lines[0] = lines[0].replace('"outcome":"succeeded"', '"outcome":"failed"', 1)
    edited.write_text("\n".join(lines) + "\n")
    result = subprocess.run(CLI + ["verify", str(edited)], capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "record 1 (line 1" in result.stdout and "was edited" in result.stdout


def test_every_webhook_payload_carries_the_change_log_head(runs):
    generic = [post["body"] for post in runs["posts"] if post["path"] == "/generic"]
    heads = [body.get("changelog_head") for body in generic]
    assert all(heads), generic[:2]
    # The first run started on an empty log; the second one found the first run's record.
    first = _changelog.read_records(runs["log"])[0]
    assert heads[0] == {"seq": 0, "sha256": _changelog.GENESIS}
    started = [body["changelog_head"] for body in generic if body["event"] == "started"]
    assert started[1] == {"seq": 1, "sha256": first["record_sha256"]}


def resealed(path):
    """The log rewritten by someone who knows the format: the first run recorded as failed, every digest redone."""
    out, prev = [], _changelog.GENESIS
    for index, record in enumerate(_changelog.read_records(path), start=1):
        body = {key: value for key, value in record.items() if key not in ("seq", "prev_sha256", "record_sha256")}
        if index == 1:
            body["outcome"] = "failed"
        sealed = _changelog.seal(body, index, prev)
        out.append(_changelog.canonical(sealed))
        prev = sealed["record_sha256"]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("tamper, text", [
    ("emptied", "says the log had record 1 (sha256 "),
    ("resealed", "the log was rewritten or resealed after that anchor was taken"),
])
def test_the_hosts_anchors_catch_a_change_log_emptied_or_resealed(runs, tmp_path, tamper, text):
    result = playbook("playbooks/changelog_verify.yml", "-e", "changelog_path=" + runs["log"])
    assert result.rc == 0, result.output[-3000:]
    assert "chain intact: 2 records" in result.output and "4 anchors agree with the log (up to record 1)" in \
        result.output, result.output[-3000:]
    damaged = tmp_path / "changelog.jsonl"
    damaged.write_text("" if tamper == "emptied" else resealed(runs["log"]))
    # The chain alone cannot tell.
    assert _changelog.verify(str(damaged))[0] is True
    result = playbook("playbooks/changelog_verify.yml", "-e", "changelog_path=" + str(damaged))
    assert result.rc != 0, result.output[-3000:]
    assert "ANCHOR DISAGREES: the anchor in" in result.output and "/app01, line 1" in result.output, \
        result.output[-3000:]
    assert text in result.output, result.output[-3000:]


def test_history_and_the_html_report_in_a_real_browser(runs):
    history = subprocess.run(CLI + ["history", runs["log"]], capture_output=True, text=True, check=False).stdout
    heads = [line for line in history.splitlines() if line.startswith("## ")]
    assert heads[0].endswith("deploy 6.6.6 in lab - FAILED") and heads[1].endswith("in lab - SUCCEEDED")
    report = os.path.join(str(runs["dir"]), "reports", "latest.html")
    assert CHROMIUM, "chromium is not installed (make bootstrap installs it)"
    dom = chromium("--dump-dom", "file://" + report)
    assert 'id="timeline"' in dom.stdout, dom.stderr[-2000:]
    assert 'class="phase failed"' in dom.stdout
    shot = os.path.join(ROOT, "build", "report-6.6.6.png")
    chromium("--window-size=1200,800", "--screenshot=" + shot, "file://" + report)
    assert os.path.getsize(shot) > 10000
