"""The execution environment's build context (``make ee``, run by ``make build``) holds what the image needs.

No image is built here (no registry is reachable for the base image), so this checks what
ansible-builder generated and runs its own introspection on the installed collection, which is
what the image build does to collect the collection's Python and system requirements.
"""
import filecmp
import glob
import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTEXT = os.path.join(ROOT, "build", "ee")
BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def definition():
    with open(os.path.join(ROOT, "execution-environment.yml")) as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def containerfile():
    path = os.path.join(CONTEXT, "Containerfile")
    assert os.path.exists(path), "no build/ee/Containerfile: run `make build` (it runs `make ee`)"
    with open(path) as handle:
        return handle.read()


def test_the_context_installs_the_built_collection(definition, containerfile):
    tarball = sorted(glob.glob(os.path.join(ROOT, "build", "conveyor-deploy-*.tar.gz")))[-1]
    shipped = os.path.join(CONTEXT, "_build", "collections", "conveyor-deploy.tar.gz")
    assert filecmp.cmp(tarball, shipped, shallow=False), "the context carries another build of the collection"
    with open(os.path.join(CONTEXT, "_build", "requirements.yml")) as handle:
        requirements = yaml.safe_load(handle)
    assert requirements["collections"] == [{"name": "/build/collections/conveyor-deploy.tar.gz", "type": "file"}]
    assert "COPY _build /build" in containerfile and "ansible-galaxy collection install" in containerfile


def test_ansible_core_and_runner_are_ranges_that_match_the_support_matrix(containerfile):
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', containerfile, re.M).group(1)
    assert "ansible-core>=2.17,<2.20" in refs and "ansible-runner>=2.3,<3" in refs
    with open(os.path.join(ROOT, "meta", "runtime.yml")) as handle:
        assert yaml.safe_load(handle)["requires_ansible"].startswith(">=2.17")


def test_python_requirements_are_ranges():
    with open(os.path.join(ROOT, "requirements.txt")) as handle:
        lines = [line.split("#")[0].strip() for line in handle if line.split("#")[0].strip()]
    assert lines and not [line for line in lines if "==" in line], "requirements.txt must give ranges, not pins"
    assert any(line.startswith("jmespath>=1.0,<2") for line in lines)
    assert any(line.startswith("tzdata") for line in lines)


def test_builder_introspection_finds_the_collection_requirements(tmp_path):
    """What the image build runs on the installed collections: it must find our requirements.txt and bindep.txt."""
    tarball = os.path.join(CONTEXT, "_build", "collections", "conveyor-deploy.tar.gz")
    env = {"PATH": BIN + os.pathsep + "/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_COLLECTIONS_PATH": str(tmp_path)}
    subprocess.run(["ansible-galaxy", "collection", "install", "--offline", "-p", str(tmp_path), tarball], env=env,
                   cwd=str(tmp_path), check=True, capture_output=True)
    pip, bindep = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    subprocess.run([sys.executable, os.path.join(CONTEXT, "_build", "scripts", "introspect.py"), "introspect",
                    "--write-pip", str(pip), "--write-bindep", str(bindep), str(tmp_path)], env=env, check=True,
                   capture_output=True)
    assert "jmespath>=1.0,<2  # from collection conveyor.deploy" in pip.read_text()
    assert "tzdata" in pip.read_text()
    assert "openssh-clients [platform:rpm]  # from collection conveyor.deploy" in bindep.read_text()
