"""percentageOfNodesToScore: the filter stops at upstream's count of feasible nodes, adaptive or configured."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from test_scheduler_builders import cache, node, pod

from scheduler.__main__ import cli
from scheduler.plugins import default_framework
from scheduler.podinfo import PodInfo


@pytest.mark.parametrize(("percentage", "found"), [(0, 420), (10, 100), (5, 100), (50, 500), (100, 1000)])
def test_feasible_nodes_found_before_scoring(percentage: int, found: int) -> None:
    nodes = cache(*(node(f"n{i}", cpu="4") for i in range(1000))).node_list()
    fw = default_framework(percentage)
    assert len(fw.find_feasible(PodInfo.of(pod("p", cpu="1")), nodes)) == found


@pytest.mark.parametrize("value", ["101", "-1"])
def test_flag_out_of_range_is_refused(value: str) -> None:
    result = CliRunner().invoke(cli, ["--percentage-of-nodes-to-score", value])
    assert result.exit_code == 2
    assert "percentage-of-nodes-to-score" in result.output
