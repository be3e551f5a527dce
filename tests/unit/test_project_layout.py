"""The repository works as AWX syncs it: a plain copy, nothing installed, its own collections path ignored.

AWX runs a job template from the synced project directory with ``ANSIBLE_COLLECTIONS_PATH`` set to
paths of its own, so the checkout's ``ansible.cfg`` does not decide where ``conveyor.deploy`` comes
from. The playbook-adjacent ``collections/`` directory (and ``playbooks/collections``) does: it
holds a link from ``ansible_collections/conveyor/deploy`` back to the checkout.
"""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
PLAYBOOKS = ["deploy.yml"] + sorted("playbooks/" + name for name in os.listdir(os.path.join(ROOT, "playbooks"))
                                    if name.endswith(".yml"))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The tracked tree, copied as a clone (or AWX's project sync) would have it: links kept as links."""
    dest = tmp_path_factory.mktemp("project")
    subprocess.run(["bash", os.path.join(ROOT, "tests", "copy-tree.sh"), str(dest)], check=True)
    return dest


def _syntax_check(project, playbook, tmp_path):
    empty = tmp_path / "awx-collections"
    empty.mkdir(exist_ok=True)
    env = {"PATH": BIN + os.pathsep + os.environ["PATH"], "HOME": str(tmp_path), "ANSIBLE_COLLECTIONS_PATH": str(empty),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run(["ansible-playbook", "--syntax-check", "-i", "localhost,", playbook], cwd=str(project),
                          env=env, capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_playbook_finds_the_collection_from_a_plain_copy(project, playbook, tmp_path):
    if playbook == "playbooks/awx_configure.yml":  # configures a controller: needs awx.awx, as its header says
        pytest.importorskip("ansible_collections.awx.awx", reason="awx.awx is not installed (the ansible package)")
    result = _syntax_check(project, playbook, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_the_link_the_collection_is_not_found(project, tmp_path):
    """The control: the same copy without collections/ cannot resolve conveyor.deploy (so the test above can fail)."""
    bare = tmp_path / "bare"
    shutil.copytree(str(project), str(bare), symlinks=True, ignore=shutil.ignore_patterns("collections"))
    result = _syntax_check(bare, "playbooks/rollback.yml", tmp_path)
    assert result.returncode != 0
    assert "conveyor.deploy" in result.stdout + result.stderr
