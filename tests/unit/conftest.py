"""Make the checkout importable as ansible_collections.conveyor.deploy and give module tests a harness."""
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, "collections")  # holds the committed link to this checkout
sys.path.insert(0, COLLECTIONS)

# Ansible's collection loader, as ansible-playbook installs it: controller plugins (callbacks,
# action plugins) are loaded through it, and it must be in place before the first import.
from ansible.plugins.loader import init_plugin_loader  # noqa: E402  pylint: disable=wrong-import-position

init_plugin_loader([COLLECTIONS])


class ModuleExit(Exception):
    """exit_json was called."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


class ModuleFail(Exception):
    """fail_json was called."""

    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


def _patch_module_args():
    """ansible-core's own helper (2.19 and later), or the way tests set module arguments before it."""
    try:
        from ansible.module_utils.testing import patch_module_args
        return patch_module_args
    except ImportError:
        import contextlib
        from ansible.module_utils import basic
        from ansible.module_utils.common.text.converters import to_bytes

        @contextlib.contextmanager
        def patch_module_args(args):
            basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
            try:
                yield
            finally:
                basic._ANSIBLE_ARGS = None
        return patch_module_args


@pytest.fixture
def run_module(monkeypatch):
    """Run a module's main() with arguments; return its result, raise ModuleFail on failure."""
    from ansible.module_utils import basic
    patch_module_args = _patch_module_args()

    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        raise ModuleExit(kwargs)

    def fail_json(self, **kwargs):
        kwargs["failed"] = True
        raise ModuleFail(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def run(module, args, check_mode=False, diff=False):
        args = dict(args)
        if check_mode:
            args["_ansible_check_mode"] = True
        if diff:
            args["_ansible_diff"] = True
        with patch_module_args(args):
            try:
                module.main()
            except ModuleExit as exc:
                return json.loads(json.dumps(exc.result, default=str))
        raise AssertionError("the module returned without exit_json or fail_json")

    return run
