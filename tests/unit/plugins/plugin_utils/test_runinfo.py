"""_runinfo.action_of: the task's resolved action, resolved once per task however many hosts and callbacks ask."""
from ansible.playbook.task import Task

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _runinfo


def test_a_short_name_resolves_once_per_task(monkeypatch):
    task = Task.load({"name": "t", "debug": {"msg": "x"}})
    # As the controller sees tasks it did not resolve itself (the profile of a deploy showed ~2,000 such lookups).
    task._resolved_action = None
    calls = []
    real = Task._resolve_action

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Task, "_resolve_action", counting)
    assert [_runinfo.action_of(task) for dummy in range(5)] == ["ansible.builtin.debug"] * 5
    assert len(calls) <= 1  # 2.17 and 2.18 resolve when the task is loaded
    other = Task.load({"name": "u", "conveyor.deploy.deploy_lock": {"state": "absent"}})
    assert _runinfo.action_of(other) == "conveyor.deploy.deploy_lock"
    assert _runinfo.is_collection_task(other) and not _runinfo.is_collection_task(task)


def test_a_templated_action_is_left_to_the_worker():
    task = Task.load({"name": "t", "action": {"module": "{{ which }}"}})
    assert _runinfo.action_of(task) == "{{ which }}"
