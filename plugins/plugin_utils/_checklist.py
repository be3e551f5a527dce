# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pre-deployment checklist's verdicts, on the controller, with no Ansible objects.

Each function turns what a check found into rows ``{check, passed, summary}``; the report
gathers the rows of every host and of the fleet, and the run is refused if any row failed.
"""

from __future__ import annotations

import re

BUILTIN = ("reachable", "prepared", "window", "approval", "lock", "disk", "artifact", "signature", "lb_capacity",
           "fleet_healthy", "config_test", "drift")


def _short(text, size):
    text = " ".join(str(text).split())
    return text if len(text) <= size else text[:size - 3] + "..."


def unknown_checks(checks):
    return [name for name in checks if name not in BUILTIN]


def host_rows(result):
    """The rows of one host from its registered preflight_host result (None when it never ran)."""
    result = result or {}
    if result.get("unreachable") or not result:
        return [{"check": "reachable", "passed": False,
                 "summary": "unreachable: " + _short(result.get("msg") or "no answer", 200)}]
    reachable = {"check": "reachable", "passed": True, "summary": "answers over SSH"}
    if not isinstance(result.get("rows"), list):
        why = result.get("msg") or result.get("exception") or "the checks did not run"
        return [reachable, {"check": "host checks", "passed": False, "summary": _short(why, 300)}]
    return [reachable] + list(result["rows"])


def lock_row(row, dead_reason):
    """A host's lock row, judged on the controller: the lock of a run that provably died passes.

    ``row`` is what preflight_host returned (``lock`` is the lock in the way); ``dead_reason``
    says why a lock's holder is dead, or None (``_holder.dead_reason`` with this controller).
    """
    held = row.get("lock")
    if row.get("passed") or not isinstance(held, dict):
        return row
    why = dead_reason(held)
    if not why:
        return row
    return dict(row, passed=True, summary="held by run %s, which died (%s): the rollout takes the lock over, "
                "records it, and puts the host through its batch again" % (held.get("run_id"), why))


def drift_row(changes):
    changes = list(changes or [])
    if not changes:
        return {"check": "drift", "passed": True, "summary": "no drift"}
    return {"check": "drift", "passed": False, "summary": "differs from the declared configuration: %s "
            "(run playbooks/environment.yml)" % ", ".join(str(change) for change in changes)}


def capacity_row(lb_enabled, answer, first_batch, required, min_healthy_percent, backend, repairs=(), names=None):
    """Whether the backend serves enough now for the first batch to be drained.

    ``repairs`` names the servers of hosts that a dead run left locked: the rollout puts them in its
    first batches, so those of them already out of rotation cost no capacity when they are drained.
    ``names``: {host: server name}; a host whose server the backend lacks could never be drained.
    """
    if not lb_enabled:
        return {"check": "lb_capacity", "passed": True,
                "summary": "no load balancer for this app (no lb group, or app_lb_enabled is false): nothing is drained"}
    if not answer or answer.get("serving") is None:
        return {"check": "lb_capacity", "passed": False, "summary": "cannot read backend %s: %s" % (
            backend, (answer or {}).get("msg") or "no answer")}
    known = {server.get("name") for server in answer.get("servers") or []}
    missing = sorted((host, name) for host, name in (names or {}).items() if name not in known)
    if missing and known:
        return {"check": "lb_capacity", "passed": False, "summary": "backend %s has no server %s: name the host's "
                "server in app_lb_server (backend %s has %s)" % (
                    backend, ", ".join("%s (host %s)" % (name, host) if name != host else name
                                       for host, name in missing[:5]) + (" and %d more" % (len(missing) - 5)
                                                                         if len(missing) > 5 else ""),
                    backend, ", ".join(sorted(known)[:8]) + (", ..." if len(known) > 8 else ""))}
    serving, total = answer["serving"], answer.get("total", answer["serving"])
    if serving == 0:
        return {"check": "lb_capacity", "passed": True,
                "summary": "no backend serves yet (first deployment): nothing to keep serving"}
    out = sorted(server.get("name") for server in answer.get("servers") or []
                 if server.get("name") in set(repairs) and not server.get("serving"))
    draining = max(0, first_batch - len(out))
    enough = serving - min(draining, serving) >= required
    summary = "%d of %d backends serve; the first batch drains %d, %d must keep serving (%s%%)" % (
        serving, total, draining, required, min_healthy_percent)
    if out:
        summary += "; %s, left out of rotation by a run that died, go%s first" % (
            ", ".join(out), "es" if len(out) == 1 else "")
    if not enough:
        summary += ": bring the fleet back up, or use smaller rolling_batches or a lower rolling_min_healthy_percent"
    return {"check": "lb_capacity", "passed": enough, "summary": summary}


def gpg_status(out):
    """gpgv's ``[GNUPG:]`` status lines as (keyword, fields) pairs, and what the script printed after it.

    Only lines gpgv wrote through --status-fd count: a keyword that appears in any other line (a
    file name, a user id) cannot pass for a status.
    """
    status, extra = [], {}
    for line in (out or "").splitlines():
        if line.startswith("[GNUPG:] "):
            fields = line[len("[GNUPG:] "):].split()
            if fields:
                status.append((fields[0], fields[1:]))
        elif line.startswith(("SHA256 ", "GPGV_RC ")):
            key, dummy, value = line.partition(" ")
            extra[key] = value.strip()
    return status, extra


def fingerprint_of(text):
    """A fingerprint as gpg prints it in status lines: 40 (or 64) hex digits, upper case, no spaces."""
    return re.sub(r"\s+", "", str(text or "")).upper().removeprefix("0X")


def signature_row(required, key, fetched, gpg, published_sha256, fingerprint=""):
    """The signature verdict from the fetch results (one per file) and gpgv's status output.

    The signature passes only with gpgv's exit status 0, a GOODSIG and a VALIDSIG status line whose signing key or
    primary key is the pinned ``fingerprint`` (app_artifact_signing_fingerprint), and no BADSIG, ERRSIG, EXPSIG,
    EXPKEYSIG or REVKEYSIG line: a key file that carries more keys than the signer's proves nothing more.
    """
    if not required:
        return {"check": "signature", "passed": True,
                "summary": "not required (app_artifact_signature_required is false)"}
    if not key:
        return {"check": "signature", "passed": False,
                "summary": "a signature is required but app_artifact_signing_key (the public key) is empty"}
    pinned = fingerprint_of(fingerprint)
    if not re.fullmatch(r"[0-9A-F]{40}|[0-9A-F]{64}", pinned):
        return {"check": "signature", "passed": False,
                "summary": "a signature is required but app_artifact_signing_fingerprint %s: pin the signer's full "
                "fingerprint (40 hex digits; gpg --fingerprint <key id> shows it)" % (
                    "is empty" if not pinned else "is not a full fingerprint (%d characters)" % len(pinned))}
    missing = [item for item in fetched or [] if item.get("status_code") != 200]
    if fetched is None or gpg is None and not missing:
        return {"check": "signature", "passed": False, "summary": "not verified: no reachable host to verify it on"}
    if missing:
        names = " and ".join(str((item.get("item") or {}).get("name", "?")) for item in missing)
        return {"check": "signature", "passed": False,
                "summary": "cannot fetch %s: %s" % (names, _short(missing[0].get("msg") or "no answer", 150))}
    status, extra = gpg_status((gpg or {}).get("stdout"))
    keywords = {keyword for keyword, dummy in status}
    valid = [fields for keyword, fields in status if keyword == "VALIDSIG" and fields]
    bad = sorted(keywords & {"BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG"})
    if bad or not valid or "GOODSIG" not in keywords or extra.get("GPGV_RC", "0") != "0":
        if "BADSIG" in keywords:
            why = "the signature does not match the artifact (BADSIG)"
        elif "NO_PUBKEY" in keywords:
            why = "it was made by a key that is not app_artifact_signing_key (NO_PUBKEY)"
        elif bad:
            why = "gpgv reported %s" % ", ".join(bad)
        elif (gpg or {}).get("rc") == 3:
            why = "the public key could not be imported"
        else:
            why = "gpg could not verify it"
        return {"check": "signature", "passed": False, "summary": "signature INVALID: " + why}
    signers = [fields[0].upper() for fields in valid] + [fields[-1].upper() for fields in valid if len(fields) >= 10]
    if pinned not in signers:
        return {"check": "signature", "passed": False, "summary": "signature INVALID: it was made by key %s, not by "
                "the pinned app_artifact_signing_fingerprint %s" % (valid[0][0][-16:], pinned[-16:])}
    signed = extra.get("SHA256", "")
    if not re.fullmatch(r"[0-9a-f]{64}", signed):
        return {"check": "signature", "passed": False, "summary": "not verified: the signed artifact's hash is missing"}
    if published_sha256 and signed != published_sha256:
        return {"check": "signature", "passed": False, "summary": "the signature is valid but the published checksum "
                "(%s...) is not that of the signed artifact (%s...)" % (published_sha256[:12], signed[:12])}
    return {"check": "signature", "passed": True, "summary": "good signature by key " + pinned[-16:]}


def results(fleet_rows, rows_by_host, hosts):
    """Every row, fleet rows first (host 'all hosts'), then each host's in order."""
    found = [dict(row, host="all hosts") for row in fleet_rows]
    for host in hosts:
        found.extend(dict(row, host=host) for row in rows_by_host.get(host, []))
    return found


def refusal(found):
    failed = [row for row in found if not row["passed"]]
    if not failed:
        return ""
    return "The pre-deployment checklist failed (%d of %d checks); nothing was changed: %s" % (
        len(failed), len(found), "; ".join("%s %s: %s" % (row["host"], row["check"], row["summary"]) for row in failed))
