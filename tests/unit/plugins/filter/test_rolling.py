import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.conveyor.deploy.plugins.filter.rolling import batch_sizes, capacity_plan


@pytest.mark.parametrize("batches, total, sizes", [
    pytest.param([1, "25%", "100%"], 4, [1, 1, 2], id="default-4"),
    pytest.param([1, "25%", "100%"], 10, [1, 2, 7], id="default-10"),
    pytest.param(["25%"], 10, [2, 2, 2, 2, 2], id="quarter-10"),
    pytest.param([1, "25%", "50%"], 4, [1, 1, 2], id="lab"),
    pytest.param(["10%"], 4, [1, 1, 1, 1], id="rounds-to-one"),
    pytest.param([2], 5, [2, 2, 1], id="last-batch-smaller"),
    pytest.param(3, 4, [3, 1], id="scalar"),
    pytest.param(["100%"], 20, [20], id="all-at-once"),
])
def test_batch_sizes_match_serial(batches, total, sizes):
    assert batch_sizes(batches, total) == sizes


@pytest.mark.parametrize("batches, text", [
    pytest.param([0], "at least 1 host", id="zero"),
    pytest.param(["0%"], "outside 1%-100%", id="zero-percent"),
    pytest.param(["101%"], "outside 1%-100%", id="over-100"),
    pytest.param(["abc"], "not a batch size", id="word"),
    pytest.param(["x%"], "not a percentage", id="bad-percent"),
    pytest.param([], "is empty", id="empty"),
    pytest.param([True], "not a batch size", id="bool"),
])
def test_batch_sizes_refuse_mistakes_naming_the_variable(batches, text):
    with pytest.raises(AnsibleFilterError) as err:
        batch_sizes(batches, 4)
    assert "rolling_batches" in str(err.value) and text in str(err.value)


def test_capacity_plan_names_the_batch_that_breaks_the_minimum():
    plan = capacity_plan([1, "25%", "100%"], 10, 50)
    assert plan["sizes"] == [1, 2, 7]
    assert plan["required_serving"] == 5
    assert plan["problems"] == ["batch 3 drains 7 of 10 hosts, leaving 3 serving, below the minimum of 5 (50%)"]
    assert capacity_plan(["25%"], 10, 75)["problems"] == []
    assert capacity_plan([1], 1, 0)["problems"] == []
    assert capacity_plan([1], 1, 50)["problems"] != []


def test_capacity_plan_counts_backends_outside_a_limited_run():
    assert capacity_plan([1], 1, 50, fleet=4)["problems"] == []
    assert capacity_plan(["100%"], 3, 50, fleet=4)["problems"] != []
    assert capacity_plan(["100%"], 2, 50, fleet=4)["problems"] == []
