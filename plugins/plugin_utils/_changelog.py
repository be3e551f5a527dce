# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The change log: a hash-chained JSON Lines file, and its readers.

Each line is one record (one playbook run). A record carries ``seq`` (1, 2, ...),
``prev_sha256`` (the digest of the previous record, 64 zeros for the first) and
``record_sha256`` (the digest of the record itself without that field), both over
the record's canonical JSON. An edited record no longer matches its own digest; a
removed or reordered record breaks the next record's ``prev_sha256`` or ``seq``.

A chain cannot show what was cut off its end, nor a log emptied or resealed whole. So
each run also leaves **anchors** where the log's owner cannot quietly rewrite them: the
head of the log (``seq`` and ``record_sha256`` of its last record) as the run found it,
in the history of every host the run locks (a ``changelog_anchor`` line), and in every
webhook payload (``changelog_head``). ``check_anchors`` compares a log with them.

Standard library only: the change log CLI (tools/conveyor-changelog) loads this
file directly, without Ansible.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import html
import json
import os

GENESIS = "0" * 64
SCHEMA = 1
# The head of the change log, as the changelog callback found it at the start of the run (and after each record
# it wrote): JSON {"seq", "sha256"}, read by the rollout (the hosts' anchors) and by the notify callback.
HEAD_ENV = "CONVEYOR_CHANGELOG_HEAD"

# Phase colours of the report's timeline; failures are drawn red whatever the phase.
PHASE_COLOURS = {
    "inspect": "#8da0cb", "lock": "#a6a6a6", "stage": "#66c2a5", "drain": "#fc8d62", "switch": "#e5c494",
    "restart": "#ffd92f", "verify": "#a6d854", "enable": "#1f78b4", "revert": "#b15928", "finish": "#cab2d6",
    "checklist": "#80b1d3", "configure": "#bebada",
}
FAILED_COLOUR = "#d62728"


class ChainError(Exception):
    """The change log cannot be read or appended to."""


def canonical(record):
    """The bytes a record's digests are computed over (and the line it is written as)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_digest(record):
    body = {key: value for key, value in record.items() if key != "record_sha256"}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def seal(record, seq, prev_sha256):
    """Return a copy of the record placed after a predecessor, with its digests."""
    sealed = dict(record, seq=seq, prev_sha256=prev_sha256, schema=SCHEMA)
    sealed.pop("record_sha256", None)
    sealed["record_sha256"] = record_digest(sealed)
    return sealed


class ChangeLogFile(object):
    """Append sealed records to a change log, one writer at a time (an exclusive flock)."""

    def __init__(self, path):
        self.path = os.path.abspath(os.path.expanduser(path))

    def problem(self):
        """Why records cannot be appended, or None."""
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o750, exist_ok=True)
        except OSError as exc:
            return "cannot create the directory %s: %s" % (directory, exc.strerror)
        if os.path.exists(self.path):
            if not os.access(self.path, os.W_OK):
                return "%s is not writable by this user" % self.path
        elif not os.access(directory, os.W_OK):
            return "cannot create files in %s" % directory
        else:
            return None
        # A damaged last record would stop the append at the end of the run: say so before it starts.
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            return "cannot read %s: %s" % (self.path, exc.strerror)
        try:
            _tail(fd, self.path)
        except ChainError as exc:
            return str(exc)
        finally:
            os.close(fd)
        return None

    def append(self, record):
        """Seal the record after the current last one and write it; return the sealed record."""
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND
        fd = os.open(self.path, flags, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = _tail(fd, self.path)
            sealed = seal(record, seq + 1, prev)
            line = (canonical(sealed) + "\n").encode("utf-8")
            os.write(fd, line)
            os.fsync(fd)
            return sealed
        finally:
            os.close(fd)

    def recorded(self, run_ids):
        """Which of ``run_ids`` already have a record in the change log (a set)."""
        wanted = set(run_ids)
        found = set()
        if not wanted or not os.path.exists(self.path):
            return found
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                # Records are canonical JSON: the run id is a plain substring of its line.
                if any('"run_id":%s' % json.dumps(run_id) in line for run_id in wanted - found):
                    try:
                        found.add(json.loads(line).get("run_id"))
                    except ValueError:
                        continue
        return found & wanted


def _tail(fd, path="the change log"):
    """(seq, digest) of the last record in an open change log, (0, GENESIS) when empty.

    Raises ChainError naming the damaged line when the last line is not a sealed record.
    """
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return 0, GENESIS
    chunk, position, data = 65536, size, b""
    while position > 0:
        step = min(chunk, position)
        position -= step
        os.lseek(fd, position, os.SEEK_SET)
        data = os.read(fd, step) + data
        lines = data.rstrip(b"\n").split(b"\n")
        if len(lines) > 1 or position == 0:
            last = lines[-1]
            break
    try:
        record = json.loads(last.decode("utf-8"))
        return int(record["seq"]), record["record_sha256"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        os.lseek(fd, 0, os.SEEK_SET)
        number = 0
        while True:
            block = os.read(fd, 1 << 20)
            if not block:
                break
            number += block.count(b"\n")
        number += 0 if data.endswith(b"\n") else 1
        shown = last[:40].decode("utf-8", "replace")
        raise ChainError("line %d of %s, the last one, is not a sealed record (it starts %r): a write was cut short "
                         "or the file was edited. Run `tools/conveyor-changelog verify %s`, then move that line out "
                         "of the log (keep it for the audit) so that records can be appended again"
                         % (number, path, shown, path))


def head(path):
    """{"seq", "sha256"} of the log's last record ({"seq": 0, "sha256": GENESIS} for an empty or missing log).

    Raises ChainError when the last line is not a sealed record."""
    if not os.path.exists(path):
        return {"seq": 0, "sha256": GENESIS}
    fd = os.open(path, os.O_RDONLY)
    try:
        seq, digest = _tail(fd, path)
    finally:
        os.close(fd)
    return {"seq": seq, "sha256": digest}


def published_head():
    """The head the changelog callback of this process published, or None."""
    try:
        found = json.loads(os.environ.get(HEAD_ENV) or "null")
    except ValueError:
        return None
    if isinstance(found, dict) and isinstance(found.get("seq"), int) and isinstance(found.get("sha256"), str):
        return {"seq": found["seq"], "sha256": found["sha256"]}
    return None


def publish_head(found):
    os.environ[HEAD_ENV] = json.dumps({"seq": int(found["seq"]), "sha256": str(found["sha256"])})


def anchors_in(lines, where):
    """The anchors a text holds: a host's history lines (``changelog_anchor``) or webhook payloads
    (``changelog_head``), one JSON object per line; each {seq, sha256, where}. Other lines are ignored."""
    found = []
    for number, line in enumerate(lines, start=1):
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict):
            continue
        anchor = item if item.get("action") == "changelog_anchor" else item.get("changelog_head")
        if isinstance(anchor, dict) and isinstance(anchor.get("seq"), int) and anchor.get("sha256"):
            label = where if item.get("action") == "changelog_anchor" else "%s (%s event of run %s)" % (
                where, item.get("event", "?"), item.get("run_id", "?"))
            found.append({"seq": anchor["seq"], "sha256": str(anchor["sha256"]),
                          "where": "%s, line %d" % (label, number)})
    return found


def check_anchors(path, anchors):
    """(ok, messages): each anchor against the log; a message for each one that disagrees, naming it.

    An anchor says "the log had record ``seq`` with digest ``sha256``" (seq 0: it was empty). The log disagrees
    when it has no such record (cut off its end, or emptied) or the record has another digest (rewritten or
    resealed after the anchor was taken).
    """
    digests = {0: GENESIS}
    try:
        for record in read_records(path):
            if isinstance(record, dict) and isinstance(record.get("seq"), int):
                digests[record["seq"]] = record.get("record_sha256")
    except (OSError, ValueError) as exc:
        return False, ["cannot read %s: %s" % (path, exc)]
    last = max(digests)
    problems = []
    for anchor in anchors:
        seq, digest = anchor["seq"], anchor["sha256"]
        if seq not in digests:
            problems.append("the anchor in %s says the log had record %d (sha256 %s...), but it ends at record %d: "
                            "records were cut off its end%s" % (anchor["where"], seq, digest[:16], last,
                                                                " (the log is empty)" if last == 0 else ""))
        elif digests[seq] != digest:
            problems.append("the anchor in %s says record %d had sha256 %s..., the log's has %s...: the log was "
                            "rewritten or resealed after that anchor was taken"
                            % (anchor["where"], seq, digest[:16], str(digests[seq])[:16]))
    return not problems, problems


def read_records(path):
    """Every record of a change log, oldest first (no verification)."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                records.append(json.loads(line))
    return records


def verify(path):
    """Check the chain. Return (ok, count, message) naming the first record that breaks it."""
    expected_prev, expected_seq, count = GENESIS, 1, 0
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        return False, 0, "cannot read %s: %s" % (path, exc.strerror)
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                return False, count, "line %d is not JSON: the record was edited or truncated" % number
            if not isinstance(record, dict) or "record_sha256" not in record:
                return False, count, "line %d is not a sealed record" % number
            label = "record %s (line %d, run %s)" % (record.get("seq"), number, record.get("run_id"))
            if record_digest(record) != record["record_sha256"]:
                return False, count, "%s was edited: its content no longer matches its sha256" % label
            if record.get("seq") != expected_seq:
                return False, count, ("%s is out of place: expected record %d, so a record was removed or the "
                                      "records were reordered" % (label, expected_seq))
            if record.get("prev_sha256") != expected_prev:
                return False, count, ("%s does not follow the record before it: that record was removed, "
                                      "replaced or reordered" % label)
            expected_prev, expected_seq, count = record["record_sha256"], expected_seq + 1, count + 1
    return True, count, "chain intact: %d record%s, last sha256 %s" % (count, "" if count == 1 else "s", expected_prev)


def _when(stamp):
    """'2026-11-27 12:00 UTC' from an ISO 8601 timestamp (the record's start)."""
    if not stamp:
        return "unknown time"
    try:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M UTC")
    except (AttributeError, ValueError):
        return str(stamp)


def _who(record):
    actor = record.get("actor") or {}
    who = "%s@%s" % (actor.get("user", "?"), actor.get("controller", "?"))
    awx = actor.get("awx") or {}
    if awx.get("job_id"):
        who += " (AWX job %s%s)" % (awx["job_id"], (", launched by %s" % awx["launched_by"]) if awx.get("launched_by") else "")
    return who


def _outcome_counts(record):
    counts = {}
    for host in (record.get("hosts") or {}).values():
        counts[host.get("outcome", "?")] = counts.get(host.get("outcome", "?"), 0) + 1
    return ", ".join("%d %s" % (number, outcome) for outcome, number in sorted(counts.items()))


def render_history(records, title="Deployment history"):
    """A CHANGELOG.md-style history, newest first."""
    lines = ["# %s" % title, ""]
    for record in reversed(records):
        what = " ".join(part for part in (record.get("kind", "run"), record.get("version")) if part)
        head = "## %s - %s in %s - %s" % (
            _when(record.get("started_at")), what, record.get("environment") or "?", record.get("outcome", "?").upper())
        lines += [head, ""]
        lines.append("- Application: %s; release %s" % (record.get("application") or "?", record.get("release_id") or "-"))
        lines.append("- By: %s" % _who(record))
        change = record.get("change") or {}
        if change.get("change_id") or change.get("approver"):
            lines.append("- Change: %s, approved by %s" % (change.get("change_id") or "-", change.get("approver") or "-"))
        if change.get("override_reason"):
            lines.append("- Override: %s" % change["override_reason"])
        if change.get("window_now"):
            lines.append("- Window judged at the injected time %s, not the clock" % change["window_now"])
        if record.get("interrupted_by"):
            lines.append("- Interrupted: %s" % record["interrupted_by"])
        if record.get("reason"):
            lines.append("- Reason: %s" % record["reason"])
        if record.get("took_over"):
            lines.append("- Took over the locks of: %s" % ", ".join(record["took_over"]))
        lines.append("- Hosts: %s" % (_outcome_counts(record) or "none"))
        for failure in record.get("failures") or []:
            lines.append("- Failed: %s at \"%s\": %s" % (failure.get("host"), failure.get("task"), failure.get("msg")))
        lines.append("- Run %s, record %s, %.0f s" % (
            record.get("run_id"), record.get("seq"), float(record.get("duration_s") or 0)))
        lines.append("")
    return "\n".join(lines)


def _seconds(stamp, origin):
    return (datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")) - origin).total_seconds()


def _change_text(change):
    text = ("%s approved by %s" % (change.get("change_id") or "-", change.get("approver") or "-")
            if change.get("change_id") or change.get("approver") else "none recorded")
    if change.get("override_reason"):
        text += "; override: " + change["override_reason"]
    return text


def render_report(record):
    """One run as an HTML page: a summary, a Gantt-style SVG of phases per host, and the failures."""
    esc = html.escape
    origin = datetime.datetime.fromisoformat(record["started_at"].replace("Z", "+00:00"))
    total = max(float(record.get("duration_s") or 0), 1.0)
    hosts = sorted((record.get("hosts") or {}).items())
    label_w, bar_w, row_h, top = 160, 900, 26, 40
    height = top + row_h * max(len(hosts), 1) + 40
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" id="timeline" width="%d" height="%d" font-family="sans-serif" '
           'font-size="12">' % (label_w + bar_w + 20, height)]
    ticks = 10
    for index in range(ticks + 1):
        x = label_w + bar_w * index / ticks
        svg.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (x, top - 8, x, height - 30))
        svg.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%.0f s</text>' % (x, top - 14, total * index / ticks))
    for row, (host, data) in enumerate(hosts):
        y = top + row * row_h
        failed_host = data.get("outcome") in ("failed", "unreachable")
        svg.append('<text x="4" y="%d" fill="%s">%s</text>' % (
            y + 17, FAILED_COLOUR if failed_host else "#000", esc("%s  %s" % (host, data.get("outcome", "")))))
        for phase in data.get("phases") or []:
            try:
                start = max(_seconds(phase["start"], origin), 0.0)
                end = max(_seconds(phase["end"], origin), start)
            except (KeyError, ValueError, AttributeError):
                continue
            x = label_w + bar_w * start / total
            width = max(bar_w * (end - start) / total, 2.0)
            colour = FAILED_COLOUR if phase.get("failed") else PHASE_COLOURS.get(phase.get("name"), "#999")
            svg.append('<rect class="phase%s" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title>'
                       '</rect>' % (" failed" if phase.get("failed") else "", x, y + 4, width, row_h - 8, colour,
                                    esc("%s %s: %.1f s to %.1f s%s" % (host, phase.get("name"), start, end,
                                                                       " FAILED" if phase.get("failed") else ""))))
    legend_y = height - 12
    x = label_w
    for name, colour in list(PHASE_COLOURS.items()) + [("failed", FAILED_COLOUR)]:
        svg.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>'
                   % (x, legend_y - 9, colour, x + 13, legend_y, name))
        x += 20 + 7 * len(name)
    svg.append("</svg>")

    rows = []
    for host, data in hosts:
        rows.append("<tr class=\"%s\"><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % (
            esc(data.get("outcome", "")), esc(host), esc(str(data.get("from", ""))), esc(str(data.get("to", ""))),
            esc(data.get("outcome", "")), esc(data.get("reason", "") or "")))
    failures = "".join("<li><b>%s</b> at &ldquo;%s&rdquo;: %s</li>" % (esc(str(f.get("host"))), esc(str(f.get("task"))),
                                                                       esc(str(f.get("msg")))) for f in record.get("failures") or [])
    title = "%s %s to %s: %s" % (record.get("kind", "run"), record.get("version") or "", record.get("environment") or "?",
                                 record.get("outcome", "?"))
    return """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%(title)s</title>
<style>
body{font-family:sans-serif;margin:24px;color:#222}
h1{font-size:20px} .failed,.unreachable{color:%(red)s} table{border-collapse:collapse;margin:12px 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left} dt{font-weight:bold;float:left;width:140px} dd{margin-left:150px}
</style></head><body>
<h1 id="title">%(title)s</h1>
<dl>
<dt>Application</dt><dd>%(app)s, release %(release)s</dd>
<dt>When</dt><dd>%(start)s to %(end)s (%(duration).1f s)</dd>
<dt>By</dt><dd>%(who)s</dd>
<dt>Change</dt><dd>%(change)s</dd>
<dt>Run</dt><dd>%(run)s, change log record %(seq)s</dd>
</dl>
<h2>Timeline</h2>
%(svg)s
<h2>Hosts</h2>
<table><tr><th>Host</th><th>From</th><th>To</th><th>Outcome</th><th>Reason</th></tr>%(rows)s</table>
<h2>Failures</h2><ul id="failures">%(failures)s</ul>
</body></html>
""" % {"title": esc(title), "red": FAILED_COLOUR, "app": esc(str(record.get("application") or "?")),
       "release": esc(str(record.get("release_id") or "-")), "start": esc(str(record.get("started_at"))),
       "end": esc(str(record.get("finished_at"))), "duration": float(record.get("duration_s") or 0),
       "who": esc(_who(record)),
       "change": esc(_change_text(record.get("change") or {})),
       "run": esc(str(record.get("run_id"))), "seq": esc(str(record.get("seq"))), "svg": "\n".join(svg),
       "rows": "".join(rows), "failures": failures or "<li>none</li>"}
