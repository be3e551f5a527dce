"""Run ansible-playbook and measure the controller time spent on the conveyor.deploy callbacks.

    python callback_cost.py OUT.json ansible-playbook ARGS...

What is counted, per run, in the ansible-playbook process:
- every hook of a conveyor.deploy.* callback plugin (wall time; the controller's main thread runs them);
- the copy of the task result Ansible makes for each of those hooks (as_callback_task_result): it is
  only made because the plugin implements the hook;
- the CPU time of the notify plugin's posting thread.
Written to OUT.json when the process exits. The timers cost a few microseconds per event.
"""
import atexit
import json
import os
import resource
import runpy
import sys
import time

from ansible.executor import task_queue_manager, task_result

COLLECTION = "conveyor.deploy."
totals = {"hooks_s": 0.0, "copies_s": 0.0, "thread_cpu_s": 0.0, "hook_calls": 0, "copies": 0, "load_s": 0.0}
state = {"last_copy": None}


def timed(function, account, clock=time.perf_counter):
    """function, with its duration (by clock) handed to account after each call."""
    def wrapper(*args, **kwargs):
        start = clock()
        try:
            return function(*args, **kwargs)
        finally:
            account(clock() - start)
    return wrapper


def keep_copy(elapsed):
    state["last_copy"] = elapsed


def add_thread_cpu(elapsed):
    totals["thread_cpu_s"] += elapsed


def add_hook(elapsed):
    totals["hooks_s"] += elapsed
    totals["hook_calls"] += 1


def timed_send(original):
    def wrapper(self, *args, **kwargs):
        state["last_copy"] = None
        return original(self, *args, **kwargs)
    return wrapper


def timed_hook(method):
    timed_method = timed(method, add_hook)

    def wrapper(*args, **kwargs):
        # The copy made just before this call was made for this plugin (send_callback copies, then calls).
        copy, state["last_copy"] = state["last_copy"], None
        if copy is not None:
            totals["copies_s"] += copy
            totals["copies"] += 1
        return timed_method(*args, **kwargs)
    return wrapper


def add_load(elapsed):
    totals["load_s"] += elapsed


def timed_load(original):
    timed_original = timed(original, add_load)

    def wrapper(self, *args, **kwargs):
        try:
            return timed_original(self, *args, **kwargs)
        finally:
            for plugin in self._callback_plugins:
                if not str(getattr(plugin, "CALLBACK_NAME", "")).startswith(COLLECTION) or getattr(plugin, "_timed", 0):
                    continue
                plugin._timed = True
                for name in plugin._implemented_callback_methods:
                    setattr(plugin, name, timed_hook(getattr(plugin, name)))
                dispatcher = getattr(sys.modules[type(plugin).__module__], "Dispatcher", None)
                if dispatcher is not None and not getattr(dispatcher, "_timed", False):
                    dispatcher._timed = True
                    dispatcher._work = timed(dispatcher._work, add_thread_cpu, clock=time.thread_time)
    return wrapper


def main():
    out, script = sys.argv[1], sys.argv[2]
    raw = task_result._RawTaskResult
    raw.as_callback_task_result = timed(raw.as_callback_task_result, keep_copy)
    manager = task_queue_manager.TaskQueueManager
    manager.send_callback = timed_send(manager.send_callback)
    manager.load_callbacks = timed_load(manager.load_callbacks)
    pid = os.getpid()

    def write():
        if os.getpid() == pid:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            totals["controller_cpu_s"] = usage.ru_utime + usage.ru_stime
            totals["controller_maxrss_mb"] = usage.ru_maxrss / 1024.0
            with open(out, "w") as handle:
                json.dump(totals, handle)

    atexit.register(write)
    sys.argv = sys.argv[2:]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
