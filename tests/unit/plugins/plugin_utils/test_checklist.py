# -*- coding: utf-8 -*-
"""The checklist's row verdicts: hosts, drift, capacity, signature, the refusal."""

import pytest

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _checklist

FPR = "0123456789ABCDEF0123456789ABCDEF01234567"
PRIMARY = "FEDCBA9876543210FEDCBA9876543210FEDCBA98"
OTHER = "AAAABBBBCCCCDDDDEEEEFFFF0000111122223333"


def status(*lines):
    return "\n".join("[GNUPG:] " + line for line in lines)


def good(signer=FPR, primary=PRIMARY):
    return status("NEWSIG", "KEY_CONSIDERED %s 0" % primary, "GOODSIG %s release" % signer[-16:],
                  "VALIDSIG %s 2026-12-01 1764547200 0 4 0 1 10 00 %s" % (signer, primary))


KEY_FPR = good()
SHA = "ab" * 32


def test_host_rows_say_unreachable_and_failed_modules_plainly():
    assert _checklist.host_rows({"unreachable": True, "msg": "ssh: connect timed out"})[0] == {
        "check": "reachable", "passed": False, "summary": "unreachable: ssh: connect timed out"}
    assert not _checklist.host_rows(None)[0]["passed"]
    crashed = _checklist.host_rows({"msg": "MODULE FAILURE"})
    assert crashed[0]["passed"] and crashed[1] == {"check": "host checks", "passed": False, "summary": "MODULE FAILURE"}
    rows = [{"check": "disk", "passed": True, "summary": "ok"}]
    assert _checklist.host_rows({"rows": rows})[1:] == rows


def test_drift_row_names_the_differences_and_the_fix():
    assert _checklist.drift_row([])["passed"]
    row = _checklist.drift_row(["config", "unit"])
    assert not row["passed"] and "config, unit" in row["summary"] and "playbooks/environment.yml" in row["summary"]


@pytest.mark.parametrize("enabled, answer, passed, text", [
    (False, None, True, "no load balancer"),
    (True, {"msg": "no socket"}, False, "cannot read backend shop: no socket"),
    (True, {"serving": 0, "total": 4}, True, "first deployment"),
    (True, {"serving": 4, "total": 4}, True, "4 of 4 backends serve; the first batch drains 1, 2 must keep serving"),
    (True, {"serving": 2, "total": 4}, False, "use smaller rolling_batches"),
])
def test_capacity_row(enabled, answer, passed, text):
    row = _checklist.capacity_row(enabled, answer, 1, 2, 50, "shop")
    assert row["passed"] is passed and text in row["summary"]


def test_capacity_row_names_hosts_whose_server_the_backend_lacks():
    answer = {"serving": 2, "total": 2, "servers": [{"name": "app01", "serving": True},
                                                    {"name": "app02", "serving": True}]}
    row = _checklist.capacity_row(True, answer, 1, 0, 0, "shop", names={"app01": "app01", "app03": "web03"})
    assert not row["passed"]
    assert row["summary"] == ("backend shop has no server web03 (host app03): name the host's server in app_lb_server "
                              "(backend shop has app01, app02)")
    assert _checklist.capacity_row(True, answer, 1, 0, 0, "shop", names={"app01": "app01"})["passed"]


def fetched(*codes):
    return [{"status_code": code, "item": {"name": name}, "msg": "HTTP Error %s" % code}
            for code, name in zip(codes, ("artifact", "artifact.asc"))]


@pytest.mark.parametrize("required, key, fetch, gpg, published, passed, text", [
    (False, False, None, None, "", True, "not required"),
    (True, False, None, None, "", False, "app_artifact_signing_key (the public key) is empty"),
    (True, True, None, None, "", False, "no reachable host"),
    (True, True, fetched(200, 404), {"skipped": True}, "", False, "cannot fetch artifact.asc: HTTP Error 404"),
    (True, True, fetched(200, 200), {"stdout": status("BADSIG x y"), "rc": 0}, "", False, "(BADSIG)"),
    (True, True, fetched(200, 200), {"stdout": status("ERRSIG x", "NO_PUBKEY x"), "rc": 0}, "", False,
     "not app_artifact_signing_key"),
    (True, True, fetched(200, 200), {"stdout": "", "rc": 3}, "", False, "could not be imported"),
    (True, True, fetched(200, 200), {"stdout": KEY_FPR + "\nSHA256 " + SHA, "rc": 0}, "cd" * 32, False,
     "the published checksum"),
    (True, True, fetched(200, 200), {"stdout": KEY_FPR + "\nSHA256 " + SHA, "rc": 0}, SHA, True,
     "good signature by key 89ABCDEF01234567"),
    # The pinned key is the signer's primary key, and the signature was made by one of its subkeys.
    (True, True, fetched(200, 200), {"stdout": good(OTHER, FPR) + "\nSHA256 " + SHA, "rc": 0}, SHA, True, "good"),
    # A valid signature by another key the key file carries is refused: only the pinned one counts.
    (True, True, fetched(200, 200), {"stdout": good(OTHER, OTHER) + "\nSHA256 " + SHA, "rc": 0}, SHA, False,
     "made by key 0000111122223333, not by the pinned app_artifact_signing_fingerprint 89ABCDEF01234567"),
    # Keywords outside gpgv's status lines (a user id, a file name) do not count.
    (True, True, fetched(200, 200), {"stdout": "GOODSIG VALIDSIG %s\nSHA256 %s" % (FPR, SHA), "rc": 0}, SHA, False,
     "gpg could not verify it"),
    (True, True, fetched(200, 200), {"stdout": KEY_FPR + "\nGPGV_RC 1\nSHA256 " + SHA, "rc": 0}, SHA, False,
     "gpg could not verify it"),
    (True, True, fetched(200, 200), {"stdout": KEY_FPR + "\n" + status("EXPKEYSIG x") + "\nSHA256 " + SHA, "rc": 0},
     SHA, False, "gpgv reported EXPKEYSIG"),
    (True, True, fetched(200, 200), {"stdout": KEY_FPR, "rc": 0}, SHA, False, "hash is missing"),
])
def test_signature_verdict(required, key, fetch, gpg, published, passed, text):
    row = _checklist.signature_row(required, key, fetch, gpg, published, fingerprint=FPR)
    assert row["passed"] is passed and text in row["summary"]


@pytest.mark.parametrize("pinned, passed, text", [
    ("", False, "app_artifact_signing_fingerprint is empty"),
    ("89ABCDEF01234567", False, "is not a full fingerprint (16 characters)"),
    ("0123 4567 89ab cdef 0123  4567 89AB CDEF 0123 4567", True, "good signature"),
    ("0x" + FPR.lower(), True, "good signature"),
])
def test_the_signer_is_pinned_by_its_full_fingerprint(pinned, passed, text):
    row = _checklist.signature_row(True, True, fetched(200, 200), {"stdout": KEY_FPR + "\nSHA256 " + SHA, "rc": 0},
                                   SHA, fingerprint=pinned)
    assert row["passed"] is passed and text in row["summary"]


def test_refusal_lists_every_failed_check_with_its_host():
    found = _checklist.results([{"check": "window", "passed": False, "summary": "closed"}],
                               {"app01": [{"check": "lock", "passed": False, "summary": "held"}],
                                "app02": [{"check": "lock", "passed": True, "summary": "free"}]}, ["app01", "app02"])
    assert [row["host"] for row in found] == ["all hosts", "app01", "app02"]
    assert _checklist.refusal(found) == ("The pre-deployment checklist failed (2 of 3 checks); nothing was changed: "
                                         "all hosts window: closed; app01 lock: held")
    assert _checklist.refusal(found[2:]) == ""
    assert _checklist.unknown_checks(["lock", "dsik"]) == ["dsik"]


def test_a_lock_row_passes_only_when_the_controller_proves_its_holder_dead():
    held = {"check": "lock", "passed": False, "summary": "held by run R", "lock": {"run_id": "R"}}
    dead = _checklist.lock_row(held, lambda lock: "its process 7 on controller c is gone")
    assert dead["passed"] and dead["summary"].startswith("held by run R, which died (its process 7 on controller c")
    assert _checklist.lock_row(held, lambda lock: None) == held
    free = {"check": "lock", "passed": True, "summary": "no deploy lock held"}
    assert _checklist.lock_row(free, lambda lock: 1 / 0) == free


def test_capacity_counts_servers_a_dead_run_left_out_as_already_drained():
    answer = {"serving": 2, "total": 4, "servers": [
        {"name": "app01", "serving": True}, {"name": "app02", "serving": True},
        {"name": "app03", "serving": False}, {"name": "app04", "serving": False}]}
    refused = _checklist.capacity_row(True, answer, 1, 2, 50, "sample")
    assert not refused["passed"] and "the first batch drains 1" in refused["summary"]
    repaired = _checklist.capacity_row(True, answer, 1, 2, 50, "sample", repairs={"app03", "app04"})
    assert repaired["passed"] and "the first batch drains 0" in repaired["summary"]
    assert "app03, app04, left out of rotation by a run that died, go first" in repaired["summary"]
    # A serving host that a dead run left locked is drained like any other.
    assert not _checklist.capacity_row(True, answer, 1, 2, 50, "sample", repairs={"app01"})["passed"]
