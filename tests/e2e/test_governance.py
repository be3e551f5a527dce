"""Governance gates on the lab: windows, approvals, the checklist, signatures, the release
policy and a canary secret. Each refusal asserts that no host changed.

Runs after test_changelog.py (the Makefile gives the order): the fleet is healthy and on
one version, whatever it is.
"""
import datetime
import json
import os
import shutil
import subprocess

import pytest

from .conftest import ENV, ROOT, Webhook, app_hosts, live_versions, on_host, playbook, releases, run

ARTIFACTS = os.path.join(ROOT, "lab", ".state", "artifacts")
# Berlin business hours, Tuesday to Thursday; the times below are injected.
WINDOWS = {"timezone": "Europe/Berlin",
           "allow": [{"name": "business hours", "days": ["tue", "wed", "thu"], "start": "09:00", "end": "16:00"}],
           "freezes": [{"name": "year-end", "start": "2026-12-20T00:00", "end": "2027-01-04T00:00",
                        "reason": "holiday freeze"}]}
SATURDAY = "2026-12-05T10:00:00+01:00"
TUESDAY = "2026-12-08T10:00:00+01:00"


def snapshot():
    """Everything a deploy would change on the app hosts: releases, the live link, locks, services."""
    return {host: on_host(host, "ls /opt/sample/releases; readlink /opt/sample/current; "
                                "ls /opt/sample/.conveyor; systemctl show -p ActiveEnterTimestamp sample")
            for host in app_hosts()}


def extra(**values):
    return ["-e", json.dumps(values)]


def other_version():
    live = set(live_versions().values())
    return "1.1.0" if "1.1.0" not in live else "2.0.0"


def production(version, **values):
    """-e for a production run: the lab serves artifacts over plain http, so production pins the checksum."""
    with open(os.path.join(ARTIFACTS, "sample-%s.tar.gz.sha256" % version)) as handle:
        digest = handle.read().split()[0]
    return extra(env_is_production=True, app_artifact_sha256=digest, **values)


@pytest.fixture
def log(tmp_path):
    path = str(tmp_path / "changelog.jsonl")
    return path, {"CONVEYOR_CHANGELOG_PATH": path}


def last_record(path):
    with open(path) as handle:
        return json.loads(handle.readlines()[-1])


def test_refused_outside_a_window_and_says_when_the_next_opens(log):
    path, env = log
    before = snapshot()
    result = playbook("deploy.yml", "-e", "app_version=" + other_version(),
                      *extra(deploy_windows=WINDOWS, deploy_window_now=SATURDAY), env=env)
    assert result.rc != 0
    assert "deployment window closed for lab: outside every window" in result.output
    assert "Next window: 2026-12-08T09:00+01:00" in result.output
    assert snapshot() == before
    record = last_record(path)
    assert record["outcome"] == "failed" and set(h["outcome"] for h in record["hosts"].values()) == {"refused"}
    assert record["window"]["rule"] == "outside every window"
    # Outside production a test may inject the time; the change log says the window was judged at it.
    assert record["change"]["window_now"] == SATURDAY


def test_refused_inside_a_freeze(log):
    path, env = log
    before = snapshot()
    result = playbook("deploy.yml", "-e", "app_version=" + other_version(),
                      *extra(deploy_windows=WINDOWS, deploy_window_now="2026-12-22T10:00:00+01:00"), env=env)
    assert result.rc != 0 and "freeze: year-end (frozen until 2027-01-04T00:00+01:00 (holiday freeze))" in result.output
    assert "Next window: 2027-01-05T09:00+01:00" in result.output
    assert snapshot() == before


@pytest.mark.parametrize("values, text", [
    pytest.param({}, "no change id: pass -e change_id=<id>", id="no-approval"),
    pytest.param({"change_id": "CHG-7"}, "change CHG-7 has no approver", id="no-approver"),
    pytest.param({"change_id": "CHG-7", "change_approver": "root"}, "who is also deploying it", id="self-approved"),
    pytest.param({"change_id": "CHG-7", "change_approver": "carol", "change_approval_expires_at": "2026-01-01T00:00Z"},
                 "expired", id="expired"),
])
def test_production_refuses_without_a_valid_approval(values, text):
    before = snapshot()
    version = other_version()
    result = playbook("deploy.yml", "-e", "app_version=" + version, *production(version, **values))
    assert result.rc != 0 and text in result.output
    assert snapshot() == before


@pytest.mark.parametrize("how", [
    pytest.param(["--skip-tags", "preflight"], id="skip-tags"),
    pytest.param(["-e", '{"preflight_checks": ["reachable"]}'], id="short-checklist"),
])
@pytest.mark.parametrize("gate", ["window", "approval"])
def test_production_cannot_be_talked_out_of_its_window_or_approval(how, gate):
    before = snapshot()
    version = other_version()
    values = {"deploy_windows": frozen_now()} if gate == "window" else {}
    if gate == "window":
        values.update(change_id="CHG-10", change_approver="carol")
    result = playbook("deploy.yml", "-e", "app_version=" + version, *production(version, **values), *how)
    assert result.rc != 0, result.output[-3000:]
    assert "refused by its gates, which the rollout enforces whatever the checklist ran" in result.output
    assert ("freeze: incident" if gate == "window" else "approval refused: no change id") in result.output
    assert "pre-deployment checklist failed" not in result.output
    assert snapshot() == before


def test_production_refuses_an_injected_time():
    before = snapshot()
    version = other_version()
    result = playbook("deploy.yml", "-e", "app_version=" + version,
                      *production(version, deploy_windows=WINDOWS, deploy_window_now=TUESDAY, change_id="CHG-11",
                                  change_approver="carol"))
    assert result.rc != 0 and "deploy_window_now is %s, but this is production" % TUESDAY in result.output
    assert snapshot() == before


@pytest.mark.parametrize("entry, text", [
    pytest.param("  approver: carol\n  status: ''\n", "change CHG-12 is without a status, not approved", id="empty"),
    pytest.param("  approver: carol\n  status: approved\n  environments: lab-prod\n",
                 "environments is 'lab-prod', not a list of environment names", id="environments-string"),
])
def test_a_malformed_approval_is_refused(tmp_path, entry, text):
    approvals = tmp_path / "approvals.yml"
    approvals.write_text("CHG-12:\n" + entry)
    before = snapshot()
    version = other_version()
    result = playbook("deploy.yml", "-e", "app_version=" + version,
                      *production(version, change_id="CHG-12", approval_source="file", approval_path=str(approvals)))
    assert result.rc != 0 and text in result.output, result.output[-3000:]
    assert snapshot() == before


def test_an_approvals_file_can_deny_a_change(tmp_path):
    approvals = tmp_path / "approvals.yml"
    approvals.write_text("CHG-8:\n  approver: carol\n  status: denied\n  comment: not during the sale\n")
    before = snapshot()
    version = other_version()
    result = playbook("deploy.yml", "-e", "app_version=" + version,
                      *production(version, change_id="CHG-8", approval_source="file", approval_path=str(approvals)))
    assert result.rc != 0 and "change CHG-8 is denied, not approved (not during the sale)" in result.output
    assert snapshot() == before


def frozen_now():
    """A window spec frozen from an hour ago to an hour from now: production's window is judged by the clock."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return {"timezone": "UTC", "freezes": [{"name": "incident", "reason": "incident review",
                                            "start": (now - datetime.timedelta(hours=1)).isoformat(timespec="minutes"),
                                            "end": (now + datetime.timedelta(hours=1)).isoformat(timespec="minutes")}]}


def test_an_override_with_a_reason_and_an_approval_deploys_in_a_closed_window_and_is_recorded(log):
    path, env = log
    target = other_version()
    result = playbook("deploy.yml", "-e", "app_version=" + target,
                      *production(target, deploy_windows=frozen_now(), override_reason="payment outage fix",
                                  change_id="CHG-9", change_approver="carol"),
                      env=env)
    assert result.rc == 0, result.output[-3000:]
    assert "overridden: payment outage fix" in result.output
    assert set(live_versions().values()) == {target}
    record = last_record(path)
    assert record["outcome"] == "succeeded"
    assert record["change"] == {"change_id": "CHG-9", "approver": "carol", "override_reason": "payment outage fix"}
    assert record["window"]["overridden"] is True and record["window"]["rule"] == "freeze: incident"
    assert {row["check"] for row in record["checklist"]} >= {"window", "approval", "lock", "disk", "artifact"}


def test_a_checklist_with_several_failures_reports_them_together():
    on_host("app02", "echo '{\"run_id\": \"other\", \"owner\": \"bob@ci\", \"started_at\": "
                     "\"2099-01-01T00:00:00.000000Z\", \"ttl\": 3600}' > /opt/sample/.conveyor/deploy.lock")
    on_host("app03", "systemctl stop sample")
    try:
        before = snapshot()
        result = playbook("deploy.yml", "-e", "app_version=" + other_version(),
                          *extra(deploy_windows=WINDOWS, deploy_window_now=SATURDAY, preflight_disk_factor=10 ** 9,
                                 preflight_checksum_url="http://artifacts:8000/nowhere.sha256"))
        assert result.rc != 0
        failures = [line for line in result.output.splitlines() if "  FAIL  " in line]
        checks = {tuple(line.strip().strip('",').split()[:3]) for line in failures}
        assert ("all", "hosts", "window") in checks
        assert {("app01", "artifact", "FAIL"), ("app04", "disk", "FAIL")} <= checks
        assert ("app02", "lock", "FAIL") in checks and ("app03", "fleet_healthy", "FAIL") in checks
        assert "no checksum published at http://artifacts:8000/nowhere.sha256" in result.output
        assert "The pre-deployment checklist failed" in result.output
        after = snapshot()
        for host in app_hosts():
            if host != "app03":  # its service was stopped by this test
                assert after[host] == before[host], host
    finally:
        on_host("app02", "rm -f /opt/sample/.conveyor/deploy.lock")
        on_host("app03", "systemctl start sample")


def test_a_host_nobody_prepared_is_refused_by_the_checklist_not_at_staging():
    """An app root and a unit the environment role never created: the checklist says so, and nothing is made."""
    before = snapshot()
    result = playbook("deploy.yml", "-e", "app_version=" + other_version(),
                      *extra(app_root="/opt/never", app_service="never"))
    assert result.rc != 0
    failures = [line for line in result.output.splitlines() if "  FAIL  " in line]
    checks = {tuple(line.strip().strip('",').split()[:3]) for line in failures}
    assert {(host, "prepared", "FAIL") for host in app_hosts()} <= checks, failures
    assert "not prepared for the application: no /opt/never, no /opt/never/releases" in result.output
    assert "no unit never.service (systemd says not-found)" in result.output
    assert "Run playbooks/environment.yml for this host first" in result.output
    assert "The pre-deployment checklist failed" in result.output
    assert snapshot() == before
    assert all(on_host(host, "test -e /opt/never && echo made") == "" for host in app_hosts())


def test_the_drift_check_names_the_drifted_host_and_changes_nothing():
    declared = on_host("app03", "md5sum /etc/sample/sample.env")
    on_host("app03", "echo 'DEBUG=\"1\"' >> /etc/sample/sample.env")
    try:
        before = snapshot()
        env_file = on_host("app03", "md5sum /etc/sample/sample.env")
        result = playbook("deploy.yml", "-e", "app_version=" + other_version(),
                          *extra(preflight_checks=["reachable", "drift"]))
        assert result.rc != 0
        assert "app03 drift: differs from the declared configuration: environment file" in result.output
        assert "app01 drift" not in result.output.split("The pre-deployment checklist failed")[1]
        assert snapshot() == before and on_host("app03", "md5sum /etc/sample/sample.env") == env_file
    finally:
        on_host("app03", "sed -i '/^DEBUG=\"1\"$/d' /etc/sample/sample.env")
    assert on_host("app03", "md5sum /etc/sample/sample.env") == declared


def test_a_window_closing_mid_rollout_finishes_the_batch_and_starts_no_other(log):
    path, env = log
    before = live_versions()
    target = other_version()
    # The window ends 16:00; the injected clock starts at 15:59:48 and runs with the deploy.
    # The first batch starts well inside the window; the long bake ends after it closed.
    result = playbook("deploy.yml", "-e", "app_version=" + target,
                      *extra(deploy_windows=WINDOWS, deploy_window_now="2026-12-08T15:59:48+01:00",
                             rolling_bake_seconds=15), env=env)
    assert result.rc != 0
    assert "The deployment window closed (outside every window" in result.output
    assert "no new batch starts" in result.output
    versions = live_versions()
    moved = [host for host in app_hosts() if versions[host] == target]
    assert moved == [app_hosts()[0]], versions  # the first batch (1 host) finished and stays
    record = last_record(path)
    assert record["rolled_back"] is False
    for host in app_hosts()[1:]:
        assert versions[host] == before[host]
        assert record["hosts"][host]["outcome"] == "not_started"
    # Put the fleet back on one version for the tests after this one.
    assert playbook("deploy.yml", "-e", "app_version=" + target).rc == 0


class Signer(object):
    """A throwaway GnuPG home with a key generated for the test."""

    def __init__(self, directory, name):
        self.home = os.path.join(directory, name)
        os.makedirs(self.home, mode=0o700)
        self.gpg("--quick-gen-key", "--passphrase", "", "%s <%s@conveyor.test>" % (name, name), "default", "default",
                 "never")

    def gpg(self, *args):
        return subprocess.run(["gpg", "--homedir", self.home, "--batch", "--yes", "--pinentry-mode", "loopback"]
                              + list(args), capture_output=True, text=True, check=True).stdout

    def public_key(self):
        return self.gpg("--armor", "--export")

    def sign(self, path, output):
        self.gpg("--armor", "--detach-sign", "--output", output, path)

    def fingerprint(self):
        """The primary key's fingerprint, from gpg's machine-readable listing."""
        listing = self.gpg("--with-colons", "--fingerprint")
        return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))


@pytest.fixture
def signing(tmp_path):
    if not shutil.which("gpg"):
        pytest.fail("gpg is not installed (make bootstrap installs gnupg)")
    made = []
    yield Signer(str(tmp_path), "release"), Signer(str(tmp_path), "intruder"), made
    for path in made:
        if os.path.exists(path):
            os.unlink(path)


def test_a_valid_signature_deploys_and_forged_ones_are_refused(signing, tmp_path):
    release, intruder, made = signing
    keyfile = tmp_path / "key.json"
    settings = {"app_artifact_signature_required": True, "app_artifact_signing_key": release.public_key(),
                "app_artifact_signing_fingerprint": release.fingerprint()}
    keyfile.write_text(json.dumps(settings))
    target = other_version()
    artifact = os.path.join(ARTIFACTS, "sample-%s.tar.gz" % target)
    signature = artifact + ".asc"
    made.append(signature)

    # Signed by a key the inventory does not trust.
    intruder.sign(artifact, signature)
    before = snapshot()
    result = playbook("deploy.yml", "-e", "app_version=" + target, "-e", "@" + str(keyfile))
    assert result.rc != 0 and "signature INVALID: it was made by a key that is not app_artifact_signing_key" in result.output
    assert snapshot() == before

    # A key file that also carries the intruder's key: gpgv accepts the signature, the pinned fingerprint does not.
    both = tmp_path / "both.json"
    both.write_text(json.dumps(dict(settings, app_artifact_signing_key=release.public_key() + intruder.public_key())))
    result = playbook("deploy.yml", "-e", "app_version=" + target, "-e", "@" + str(both))
    assert result.rc != 0 and "not by the pinned app_artifact_signing_fingerprint" in result.output, result.output[-3000:]
    assert snapshot() == before
    unpinned = tmp_path / "unpinned.json"
    unpinned.write_text(json.dumps(dict(settings, app_artifact_signing_fingerprint="")))
    result = playbook("deploy.yml", "-e", "app_version=" + target, "-e", "@" + str(unpinned))
    assert result.rc != 0 and "app_artifact_signing_fingerprint is empty" in result.output
    assert snapshot() == before

    # The right key's signature of other bytes (a signature moved onto this artifact).
    other = tmp_path / "other.tar.gz"
    other.write_bytes(b"not the artifact")
    release.sign(str(other), signature)
    result = playbook("deploy.yml", "-e", "app_version=" + target, "-e", "@" + str(keyfile))
    assert result.rc != 0 and "signature INVALID: the signature does not match the artifact (BADSIG)" in result.output
    assert snapshot() == before

    # Without a signature at all.
    os.unlink(signature)
    result = playbook("deploy.yml", "-e", "app_version=" + target, "-e", "@" + str(keyfile))
    assert result.rc != 0 and "cannot fetch artifact.asc" in result.output
    assert snapshot() == before

    release.sign(artifact, signature)
    result = playbook("deploy.yml", "-e", "app_version=" + target, "-e", "@" + str(keyfile))
    assert result.rc == 0, result.output[-3000:]
    assert "good signature by key" in result.output
    assert set(live_versions().values()) == {target}


def test_a_release_that_breaks_the_policy_is_refused_naming_the_files():
    host = app_hosts()[0]
    current = on_host(host, "basename $(readlink /opt/sample/current)")
    good = [r for r in releases(host) if r.get("state") == "good" and r["release_id"] != current]
    assert good, "no previous good release to tamper with"
    target = sorted(good, key=lambda r: r["release_id"])[-1]["release_id"]
    # Owned by the app user, the app could rewrite its own code; the content digest does not see owners.
    on_host(host, "chown sample /opt/sample/releases/%s/app.py" % target)
    try:
        before = snapshot()
        result = playbook("playbooks/rollback.yml", "-e", "rollback_to=" + target, "-e", "rollback_reason=policy test")
        assert result.rc != 0
        assert "breaks the release policy" in result.output
        assert "app.py (owned by uid %s)" % on_host(host, "id -u sample") in result.output
        assert snapshot() == before
    finally:
        on_host(host, "chown root /opt/sample/releases/%s/app.py" % target)


def test_a_canary_secret_appears_nowhere(tmp_path):
    """The vaulted APP_SECRET_KEY (environment role) and notify token, over a full -vvv deploy under ansible-runner."""
    import ansible_runner

    secrets = run(["ansible-vault", "view", os.path.join(ROOT, "inventories", "lab", "group_vars", "all", "vault.yml")])
    canaries = [line.split(":", 1)[1].strip() for line in secrets.output.splitlines()
                if line.startswith(("vault_app_secret_key:", "vault_notify_token:"))]
    assert len(canaries) == 2 and all("canary" in value for value in canaries)
    hook = Webhook(str(tmp_path))
    changelog = tmp_path / "changelog.jsonl"
    envvars = {"PATH": ENV["PATH"], "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
               "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, "collections"),
               "CONVEYOR_CHANGELOG_PATH": str(changelog), "CONVEYOR_CHANGELOG_REPORT_DIR": str(tmp_path / "reports"),
               "CONVEYOR_NOTIFY_URL": hook.url + "/generic", "CONVEYOR_NOTIFY_SLACK_URL": hook.url + "/slack"}
    private = str(tmp_path / "runner")
    os.makedirs(private)
    outputs = []
    try:
        for name, args in (("playbooks/environment.yml", ""), ("deploy.yml", "-e app_version=" + other_version())):
            result = ansible_runner.run(private_data_dir=private, project_dir=ROOT, playbook=os.path.join(ROOT, name),
                                        inventory=os.path.join(ROOT, "inventories", "lab"), cmdline="-vvv " + args,
                                        envvars=envvars, quiet=True)
            assert result.rc == 0, result.stdout.read()[-3000:]
            outputs.append(result.stdout.read())
    finally:
        hook.close()
    posts = hook.received()
    assert posts and all(post["authorized"] for post in posts if post["path"] == "/generic")
    assert sum(len(text) for text in outputs) > 100000  # -vvv really was verbose
    places = {"stdout": "\n".join(outputs), "change log": changelog.read_text(),
              "webhook payloads": json.dumps([post["body"] for post in posts])}
    for directory, dummy, files in os.walk(os.path.join(private, "artifacts")):
        for name in files:
            with open(os.path.join(directory, name), errors="replace") as handle:
                places["runner artifact " + name] = handle.read()
    assert any(name.startswith("runner artifact") for name in places)
    for canary in canaries:
        leaks = [where for where, text in places.items() if canary in text]
        assert leaks == [], "%s leaked into %s" % (canary[:12], leaks)
    # The secret did reach the hosts, where it belongs.
    assert on_host(app_hosts()[0], "grep -c %s /etc/sample/secrets.env" % canaries[0]) == "1"
