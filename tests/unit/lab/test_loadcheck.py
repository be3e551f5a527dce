"""lab/loadcheck.py counts the 503s answered before anything serves apart from later failures."""
import json
import os
import subprocess
import sys

import pytest

from ..plugins.modules.jsonserver import serve

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def scripted(answers):
    """respond() for jsonserver: the given statuses in turn, then the last one forever."""
    statuses = list(answers)

    def respond():
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        return status, "1.0.0" if status == 200 else "no server is available"
    return respond


@pytest.mark.parametrize("answers, before, after", [
    ([503] * 5 + [200], 5, 0),                     # nothing deployed yet, then it serves: no deploy failure
    ([503] * 3 + [200] * 4 + [503] * 2 + [200], 3, 2),  # a failure once it served counts as one
    ([200], 0, 0),
    ([503], 12, 0),                                  # nothing ever served
])
def test_failures_before_the_first_answer_are_counted_apart(answers, before, after, tmp_path):
    out = tmp_path / "summary.json"
    with serve(scripted(answers)) as base:
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "lab", "loadcheck.py"), "--url", base + "/version",
                               "--workers", "1", "--rate", "200", "--max-requests", "12", "--duration", "20",
                               "--out", str(out)], capture_output=True, text=True, check=False, timeout=60)
    summary = json.loads(out.read_text())
    assert summary["sent"] == 12
    assert summary["failed"] == before + after
    assert (summary["failed_before_first_answer"], summary["failed_after_first_answer"]) == (before, after)
    assert (summary["first_answer_at"] is None) == (answers == [503])
    assert proc.returncode == (1 if before + after else 0)
