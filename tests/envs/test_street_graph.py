"""Street-graph distances and routes on hand-checkable grids."""

import itertools

import numpy as np
import pytest

from embodia.envs.nav.street_graph import EdgePoint, StreetGraph


@pytest.fixture
def grid():
    # 3x3 intersections, 10 m apart: node i*3+j at (10 i, 10 j).
    return StreetGraph.grid(3, 3, 10.0)


def test_grid_shape(grid):
    assert grid.num_nodes == 9 and len(grid.edges) == 12
    np.testing.assert_allclose(grid.positions[5], [10.0, 20.0])
    assert grid.node_distances[0, 8] == 40.0


def test_distance_on_the_same_edge(grid):
    e = grid.edge_between(0, 3)  # (0,0)-(10,0)
    assert grid.distance(EdgePoint(e, 0.2), EdgePoint(e, 0.7)) == pytest.approx(5.0)


def test_distance_across_the_grid(grid):
    # From (2, 0) on edge 0-3 to (20, 15) on edge 7-8 (nodes (20,10)-(20,20)): 8 m to node 3 at (10,0),
    # then 10 to node 6 at (20,0), 10 to node 7 at (20,10), then 5 m up: 33 m.
    a = EdgePoint(grid.edge_between(0, 3), 0.2)
    b = EdgePoint(grid.edge_between(7, 8), 0.5)
    assert grid.distance(a, b) == pytest.approx(33.0)
    assert grid.distance(b, a) == pytest.approx(33.0)
    route = grid.route(a, b)
    assert route.length == pytest.approx(33.0)
    assert np.sum(np.linalg.norm(np.diff(route.points, axis=0), axis=1)) == pytest.approx(33.0)
    np.testing.assert_allclose(route.points[0], [2.0, 0.0])
    np.testing.assert_allclose(route.points[-1], [20.0, 15.0])


def test_project_and_distance_from_a_point(grid):
    ep, off = grid.project(np.array([4.0, 1.5]))
    np.testing.assert_allclose(grid.point(ep), [4.0, 0.0])
    assert off == pytest.approx(1.5)
    # From (4, 1.5) -> street point (4, 0) -> node 0 (4 m) -> (0, 10) node 1 (10 m): 14 m.
    assert grid.distance_from(np.array([4.0, 1.5]), grid.at_node(1)) == pytest.approx(14.0)


def test_random_tie_breaking_gives_only_shortest_paths(grid):
    rng = np.random.default_rng(0)
    paths = {tuple(grid.node_path(0, 8, rng)) for _ in range(50)}
    assert len(paths) == 6  # C(4, 2) monotone lattice paths
    for path in paths:
        assert sum(grid.node_distances[a, b] for a, b in itertools.pairwise(path)) == 40.0


def test_bad_graphs_are_rejected():
    with pytest.raises(ValueError, match="connected"):
        StreetGraph(np.array([[0.0, 0], [1, 0], [5, 5], [6, 5]]), np.array([[0, 1], [2, 3]]))
    with pytest.raises(ValueError, match="distinct"):
        StreetGraph(np.array([[0.0, 0], [0, 0]]), np.array([[0, 1]]))
