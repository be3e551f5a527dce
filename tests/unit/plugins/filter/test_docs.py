"""Every filter the collection exposes has a documentation file that matches its Python signature.

ansible-doc and Galaxy's importer read ``plugins/filter/<name>.yml``; a filter without one shows as
UNDOCUMENTED, and a file whose options drift from the function documents arguments that do not exist.
"""
import importlib
import inspect
import os

import pytest
import yaml

FILTER_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "filter")
MODULES = sorted(name[:-3] for name in os.listdir(FILTER_DIR) if name.endswith(".py") and name != "__init__.py")


def _filters():
    found = []
    for module in MODULES:
        plugin = importlib.import_module("ansible_collections.conveyor.deploy.plugins.filter." + module)
        for name, func in sorted(plugin.FilterModule().filters().items()):
            found.append(pytest.param(name, func, id=name))
    return found


@pytest.mark.parametrize("name, func", _filters())
def test_filter_documentation_matches_the_function(name, func):
    path = os.path.join(FILTER_DIR, name + ".yml")
    assert os.path.exists(path), "filter %s has no %s" % (name, os.path.basename(path))
    with open(path) as handle:
        doc = yaml.safe_load(handle)
    assert set(doc) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    documentation = doc["DOCUMENTATION"]
    assert documentation["name"] == name
    assert "conveyor.deploy." + name in doc["EXAMPLES"], "the examples must call the filter by its FQCN"
    assert "_value" in doc["RETURN"]

    params = list(inspect.signature(func).parameters.values())
    options = documentation["options"]
    assert "_input" in options and options["_input"].get("required") is True
    expected = {param.name: param for param in params[1:]}
    assert set(options) - {"_input"} == set(expected), "documented options differ from %s's arguments" % name
    for option, param in expected.items():
        if param.default is inspect.Parameter.empty:
            assert options[option].get("required") is True, "%s.%s has no default, so it is required" % (name, option)
        elif param.default is not None:
            assert options[option].get("default") == param.default, "%s.%s default" % (name, option)
    positional = [item.strip() for item in documentation["positional"].split(",")]
    assert positional == ["_input"] + list(expected), "positional must list _input and the arguments in order"
