"""Drive the callbacks' hooks directly with real result and stats objects and small stand-ins."""

import pytest
from ansible.executor.stats import AggregateStats
try:
    from ansible.executor.task_result import CallbackTaskResult
except ImportError:  # ansible-core < 2.19 hands callbacks a TaskResult
    from ansible.executor.task_result import TaskResult as CallbackTaskResult
from ansible.inventory.host import Host
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import callback_loader


class Role(object):
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class Task(object):
    """What the callbacks read of a task."""

    def __init__(self, name, action, args=None, role=None, path="roles/rolling/tasks/x.yml:1", no_log=False, tags=()):
        self.name = name
        self.action = action
        self.resolved_action = action
        self.args = args or {}
        self._role = Role(role) if role else None
        self.path = path
        self.no_log = no_log
        self.tags = list(tags)
        self.implicit = False

    def get_name(self):
        return self.name

    def get_path(self):
        return self.path


class Inventory(object):
    def __init__(self, hosts):
        self.hosts = hosts

    def get_hosts(self, pattern):
        return [Host(name) for name in self.hosts]


class VariableManager(object):
    def __init__(self, extra_vars, host_vars, hosts=("app01", "app02")):
        self.extra_vars = extra_vars
        self.host_vars = host_vars
        self._inventory = Inventory(hosts)
        self._loader = DataLoader()

    def get_vars(self, play=None, host=None, include_hostvars=True):
        return dict(self.host_vars, **self.extra_vars)


class Play(object):
    def __init__(self, extra_vars=None, host_vars=None):
        self.hosts = "app"
        self.manager = VariableManager(extra_vars or {}, host_vars or {})

    def get_variable_manager(self):
        return self.manager


class Playbook(object):
    def __init__(self, path):
        self._file_name = path


class Display(object):
    def __init__(self):
        self.warnings, self.errors, self.lines = [], [], []

    def warning(self, msg, *args, **kwargs):
        self.warnings.append(msg)

    def error(self, msg, *args, **kwargs):
        self.errors.append(msg)

    def display(self, msg, *args, **kwargs):
        self.lines.append((msg, kwargs.get("stderr", False)))


def result(host, task, data):
    return CallbackTaskResult(Host(host), task, data, {"name": task.name})


def stats(summary, custom=None):
    """AggregateStats with ok/failures/unreachable/changed counts per host and set_stats data."""
    agg = AggregateStats()
    for host, counts in summary.items():
        for what, number in counts.items():
            for dummy in range(number):
                agg.increment("dark" if what == "unreachable" else what, host)
    for key, value in (custom or {}).items():
        agg.set_custom_stats(key, value)
    return agg


@pytest.fixture
def load_callback(monkeypatch):
    def load(name, **options):
        plugin = callback_loader.get(name)
        plugin.set_options(direct=options)
        display = Display()
        monkeypatch.setattr(plugin, "_display", display)
        return plugin, display
    return load
