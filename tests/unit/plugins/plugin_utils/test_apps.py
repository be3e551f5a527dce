"""Which application a playbook acts on: app_hosts names an inventory group, a wrong one is refused by name."""
import pytest

from ansible.errors import AnsibleLookupError

from ansible_collections.conveyor.deploy.plugins.lookup.app_hosts import LookupModule
from ansible_collections.conveyor.deploy.plugins.plugin_utils import _apps

GROUPS = {"all": ["a1", "a2", "o1", "lb1"], "ungrouped": [], "app": ["a1", "a2"], "other": ["o1"], "lb": ["lb1"],
          "empty": []}


def test_the_group_comes_back_as_the_play_pattern():
    lookup = LookupModule()
    assert lookup.run([], {"groups": GROUPS}) == ["app"]
    assert lookup.run([], {"groups": GROUPS, "app_hosts": "other"}) == ["other"]
    assert lookup.run(["other"], {"groups": GROUPS, "app_hosts": "app"}) == ["other"]


def test_a_group_the_inventory_lacks_names_the_variable_and_the_app_groups_there_are():
    with pytest.raises(AnsibleLookupError) as err:
        LookupModule().run([], {"groups": GROUPS, "app_hosts": "othr"})
    assert str(err.value) == ("app_hosts is 'othr', which is not a group of this inventory: pass -e app_hosts=<the "
                              "group of the app's hosts> (groups with hosts: app, other).")


def test_an_empty_group_acts_on_nothing_and_is_refused():
    with pytest.raises(_apps.AppError) as err:
        _apps.app_hosts("empty", GROUPS)
    assert "The group 'empty' (app_hosts) has no hosts in this inventory: nothing to act on." in str(err.value)
    with pytest.raises(_apps.AppError) as err:
        _apps.app_hosts("web", {"all": []})
    assert "(groups with hosts: none)" in str(err.value)


def test_without_a_name_the_default_group_is_the_pattern_even_where_the_inventory_lacks_it():
    assert _apps.app_hosts(None, {"all": ["localhost"]}) == "app"
    assert _apps.app_hosts(" ", GROUPS) == "app"
