"""The built tarball, installed elsewhere, works from its own directory with nothing of the checkout around.

``make build`` builds build/conveyor-deploy-<version>.tar.gz and runs these tests: the tarball is
installed with ``ansible-galaxy`` into a scratch path, and every plugin, role and playbook is used
from there as a user of the collection (or Galaxy's importer) would: no checkout ``ansible.cfg``,
no ``ANSIBLE_CONFIG``, the working directory inside the installed collection.
"""
import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tarballs = sorted(glob.glob(os.path.join(ROOT, "build", "conveyor-deploy-*.tar.gz")))
    assert tarballs, "no build/conveyor-deploy-*.tar.gz: run `make build`"
    home = tmp_path_factory.mktemp("home")
    path = tmp_path_factory.mktemp("collections")
    env = {"PATH": BIN + os.pathsep + "/usr/bin:/bin", "HOME": str(home), "ANSIBLE_COLLECTIONS_PATH": str(path),
           "ANSIBLE_FORCE_COLOR": "0", "LANG": "C.UTF-8"}
    subprocess.run(["ansible-galaxy", "collection", "install", "--offline", "-p", str(path), tarballs[-1]], env=env,
                   cwd=str(home), check=True, capture_output=True)
    return {"dir": os.path.join(str(path), "ansible_collections", "conveyor", "deploy"), "env": env}


def _run(installed, *args):
    return subprocess.run(list(args), cwd=installed["dir"], env=installed["env"], capture_output=True, text=True,
                          check=False, timeout=300)


def _names(installed, kind, pattern):
    base = os.path.join(installed["dir"], kind)
    return sorted({os.path.splitext(os.path.basename(name))[0] for name in glob.glob(os.path.join(base, pattern))
                   if not os.path.basename(name).startswith("_")})


def test_nothing_of_the_checkout_is_shipped(installed):
    for name in ("ansible.cfg", "collections", "playbooks/collections", "execution-environment.yml", ".ansible-lint"):
        assert not os.path.lexists(os.path.join(installed["dir"], name)), name + " is in the built collection"


@pytest.mark.parametrize("kind, directory, pattern", [
    ("module", "plugins/modules", "*.py"),
    ("callback", "plugins/callback", "*.py"),
    ("lookup", "plugins/lookup", "*.py"),
    ("filter", "plugins/filter", "*.yml"),
    ("role", "roles", "*"),
])
def test_ansible_doc_renders_every_plugin_and_role(installed, kind, directory, pattern):
    names = _names(installed, directory, pattern)
    assert names, "nothing under " + directory
    result = _run(installed, "ansible-doc", "-t", kind, "--json", *["conveyor.deploy." + name for name in names])
    assert result.returncode == 0, result.stderr
    docs = json.loads(result.stdout)
    assert sorted(docs) == sorted("conveyor.deploy." + name for name in names), result.stderr
    for name, doc in docs.items():
        if kind == "role":
            assert doc["entry_points"], name + " has no documented entry point"
            for entry, spec in doc["entry_points"].items():
                assert spec.get("short_description"), "%s entry point %s has no short_description" % (name, entry)
        else:
            assert doc.get("doc", {}).get("short_description"), name + " is undocumented"
    assert "UNDOCUMENTED" not in result.stdout + result.stderr
    assert "[WARNING]" not in result.stderr, result.stderr


def test_every_shipped_playbook_passes_syntax_check_from_the_installed_directory(installed):
    playbooks = ["deploy.yml"] + ["playbooks/%s.yml" % name for name in _names(installed, "playbooks", "*.yml")]
    assert len(playbooks) > 5
    for playbook in playbooks:
        result = _run(installed, "ansible-playbook", "--syntax-check", "-i", "localhost,", playbook)
        assert result.returncode == 0, playbook + ":\n" + result.stdout + result.stderr


def test_shipped_playbooks_run_by_fqcn(installed):
    result = _run(installed, "ansible-playbook", "--syntax-check", "-i", "localhost,", "conveyor.deploy.rollback")
    assert result.returncode == 0, result.stdout + result.stderr
