"""Tests for the Mem4Nav semantic topology graph: two-gate node creation, running means, edges, planning."""

import itertools

import networkx as nx
import numpy as np
import pytest

from embodia.memory.topology import SemanticTopologyGraph, TopologyConfig

D = 8


def e(i: int) -> np.ndarray:
    v = np.zeros(D)
    v[i] = 1.0
    return v


def p(x: float, y: float = 0.0, z: float = 0.0) -> np.ndarray:
    return np.array([x, y, z], dtype=np.float64)


def make(**kwargs) -> SemanticTopologyGraph:
    return SemanticTopologyGraph(TopologyConfig(embedding_dim=D, **kwargs))


def test_first_observation_creates_node_zero():
    g = make()
    assert g.current is None and len(g) == 0 and g.nearest_node(p(0)) is None
    assert g.observe(e(0), p(1, 2, 3), step=4) == 0
    assert g.current == 0 and len(g) == 1
    attrs = g.graph.nodes[0]
    np.testing.assert_array_equal(attrs["position"], [1, 2, 3])
    np.testing.assert_array_equal(attrs["descriptor"], e(0))
    assert attrs["count"] == 1 and attrs["created_step"] == 4 and attrs["last_step"] == 4


# e(0) vs e(1): ||e0 - e1|| = sqrt(2) > delta = 0.7 (far); e(0) vs near0: ~0.2 (near).
NEAR0 = e(0) + 0.2 * e(1)


@pytest.mark.parametrize(
    ("embedding", "position", "expected_nodes", "expected_node"),
    [
        (e(1), p(20), 2, 1),  # far in embedding AND in space: new node
        (e(1), p(3), 1, 0),  # far in embedding, near in space: update
        (NEAR0, p(20), 1, 0),  # near in embedding, far in space: update
        (NEAR0, p(3), 1, 0),  # near in both: update
        (e(1), p(5), 1, 0),  # exactly at the spatial gate counts as near
    ],
    ids=["far-far", "far-emb-near-space", "near-emb-far-space", "near-near", "at-gate"],
)
def test_creation_needs_both_gates(embedding, position, expected_nodes, expected_node):
    g = make(delta=0.7, spatial_gate=5.0)
    g.observe(e(0), p(0), 0)
    assert g.observe(embedding, position, 1) == expected_node
    assert len(g) == expected_nodes == len(g.graph)
    assert g.current == expected_node


@pytest.mark.parametrize(("dist", "expect_new"), [(0.49, False), (0.51, True)])
def test_embedding_gate_boundary(dist, expect_new):
    g = make(delta=0.5, spatial_gate=1.0)
    g.observe(e(0), p(0), 0)
    # A unit vector at angle a from e0 is at distance 2 sin(a/2); 3x its length must not matter (normalised).
    a = 2 * np.arcsin(dist / 2)
    v = 3.0 * (np.cos(a) * e(0) + np.sin(a) * e(1))
    assert g.observe(v, p(100), 1) == (1 if expect_new else 0)
    assert len(g) == 1 + expect_new


def test_update_target_spatially_nearest_else_descriptor_nearest():
    g = make(delta=0.7, spatial_gate=5.0)
    g.observe(e(0), p(0), 0)
    g.observe(e(1), p(20), 1)  # node 1
    # Near node 0 in space, looks like node 1: the spatially nearest node (0) is updated.
    assert g.observe(e(1), p(1), 2) == 0
    # Far from both, looks like node 1 while spatially closer to node 0: node 1 is updated.
    assert g.observe(e(1), p(-40), 3) == 1
    assert len(g) == 2
    assert g.graph.nodes[0]["count"] == 2 and g.graph.nodes[1]["count"] == 2


def test_running_means_hand_computed():
    g = make(spatial_gate=5.0)
    g.observe(np.array([3.0, 4.0, 0, 0, 0, 0, 0, 0]), p(0, 0, 0), 2)  # unit (0.6, 0.8)
    g.observe(np.array([0.0, 2.0, 0, 0, 0, 0, 0, 0]), p(1, 2, 0), 5)  # unit (0, 1)
    g.observe(np.array([0.0, 0.0, -5, 0, 0, 0, 0, 0]), p(2, 1, 3), 9)  # unit (0, 0, -1)
    assert len(g) == 1
    attrs = g.graph.nodes[0]
    np.testing.assert_allclose(attrs["descriptor"], [0.2, 0.6, -1 / 3, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(attrs["position"], [1.0, 1.0, 1.0])
    assert attrs["count"] == 3 and attrs["created_step"] == 2 and attrs["last_step"] == 9
    snap = g.snapshot()
    np.testing.assert_allclose(snap["descriptors"][0], attrs["descriptor"], rtol=1e-6)
    np.testing.assert_allclose(snap["positions"][0], [1.0, 1.0, 1.0])
    assert snap["counts"].tolist() == [3]


def test_embedding_gate_compares_against_normalised_descriptor():
    # Node 0 = mean(e0, e1) = (0.5, 0.5), norm 0.707. With delta = 0.2 the unit query (1, 1)/sqrt(2) is at
    # distance 0 from the normalised descriptor but 0.29 from the raw mean: it must match (no new node).
    g = make(delta=0.2, spatial_gate=5.0)
    g.observe(e(0), p(0), 0)
    g.observe(e(1), p(1), 1)
    assert g.observe(e(0) + e(1), p(100), 2) == 0
    assert len(g) == 1


def test_edge_weight_without_similarity():
    g = make(alpha=2.0, beta=0.5, c_instr=0.1)
    g.observe(e(0), p(0), 0)
    g.observe(e(1), p(3, 4, 0) * 2, 1)  # 10 m away
    assert g.graph.edges[0, 1]["weight"] == pytest.approx(2.0 * 10.0 + 0.5 * 0.1)
    assert g.graph.edges[0, 1]["traversals"] == 1


def test_edge_weight_with_similarity():
    g = make(alpha=1.0, beta=0.5, c_instr=0.1)
    g.observe(e(0), p(0), 0)
    g.observe(e(1), p(0, 10), 1, instruction_similarity=0.8)  # c_instr = 1 - 0.8
    assert g.graph.edges[0, 1]["weight"] == pytest.approx(10.0 + 0.5 * 0.2)
    g.observe(e(2), p(0, 10, 10), 2, instruction_similarity=-1.0)  # c_instr = 2
    assert g.graph.edges[1, 2]["weight"] == pytest.approx(10.0 + 0.5 * 2.0)


def test_retraversal_averages_weight():
    g = make(alpha=1.0, beta=0.5, c_instr=0.1)
    g.observe(e(0), p(0), 0)
    g.observe(e(1), p(10), 1)  # w1 = 10 + 0.05
    g.observe(e(0), p(1), 2, instruction_similarity=0.8)  # node 0 moves to x = 0.5: w2 = 9.5 + 0.1
    np.testing.assert_allclose(g.graph.nodes[0]["position"], [0.5, 0, 0])
    data = g.graph.edges[0, 1]
    assert data["traversals"] == 2
    assert data["weight"] == pytest.approx((10.05 + 9.6) / 2)
    g.observe(e(1), p(10), 3)  # node 1 stays at x = 10: w3 = 9.5 + 0.05
    assert g.graph.edges[1, 0]["weight"] == pytest.approx((10.05 + 9.6 + 9.55) / 3)
    assert g.graph.number_of_edges() == 1 and g.stats()["traversals"] == 3


def test_staying_at_a_node_adds_no_edge_or_self_loop():
    g = make()
    for step in range(5):
        assert g.observe(e(0), p(step * 0.5), step) == 0
    assert g.graph.number_of_edges() == 0 and nx.number_of_selfloops(g.graph) == 0
    g.observe(e(1), p(30), 5)
    g.observe(e(1), p(31), 6)
    assert list(g.graph.edges) == [(0, 1)] and nx.number_of_selfloops(g.graph) == 0
    assert g.stats()["traversals"] == 1 and g.stats()["observations"] == 7


def test_shortest_path_prefers_cheaper_detour():
    # Triangle 0 (0,0), 1 (10,0), 2 (10,10); the direct 0-2 edge (14.1 m) carries a bad instruction cost.
    g = make(alpha=1.0, beta=10.0)
    g.observe(e(0), p(0), 0)
    g.observe(e(1), p(10), 1, instruction_similarity=1.0)  # w = 10
    g.observe(e(2), p(10, 10), 2, instruction_similarity=1.0)  # w = 10
    g.observe(e(0), p(0), 3, instruction_similarity=-1.0)  # w = 14.14 + 20
    assert g.shortest_path(0, 2) == [0, 1, 2]
    assert g.path_length([0, 1, 2]) == pytest.approx(20.0)
    assert g.path_length([0, 2]) == pytest.approx(np.hypot(10, 10) + 20.0)
    assert g.shortest_path(2, 2) == [2] and g.path_length([2]) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_shortest_path_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    g = make(spatial_gate=5.0)
    grid = [(x, y) for x in range(4) for y in range(2)]
    embeds = {c: e(i) for i, c in enumerate(grid)}  # distinct landmarks
    cell = grid[0]
    for step in range(40):  # a random walk on a 4x2 grid of landmarks 20 m apart
        sim = None if rng.random() < 0.3 else float(rng.uniform(-1, 1))
        jitter = rng.uniform(-1, 1, size=3) * [1, 1, 0]
        g.observe(embeds[cell], 20.0 * p(*cell) + jitter, step, instruction_similarity=sim)
        moves = [(cell[0] + dx, cell[1] + dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        options = [m for m in moves if m in embeds]
        cell = options[rng.integers(len(options))]
    n = len(g)
    assert n >= 5 and g.graph.number_of_edges() >= n  # a graph with at least one cycle

    def weight(path):
        return sum(g.graph.edges[u, v]["weight"] for u, v in itertools.pairwise(path))

    for s, t in itertools.combinations(range(n), 2):
        best = min(weight(q) for q in nx.all_simple_paths(g.graph, s, t))
        path = g.shortest_path(s, t)
        assert path[0] == s and path[-1] == t
        assert g.path_length(path) == pytest.approx(best)
        assert weight(path) == pytest.approx(best)


def test_shortest_path_unreachable_and_unknown_nodes():
    g = make()
    g.observe(e(0), p(0), 0)
    g.observe(e(1), p(10), 1)
    g.observe(e(2), p(20), 2)
    g.graph.remove_edge(1, 2)
    assert g.shortest_path(0, 2) == []
    for bad in [(0, 3), (-1, 0), (0, 1.0), (True, 0)]:
        with pytest.raises(ValueError, match="not a node"):
            g.shortest_path(*bad)
    with pytest.raises(ValueError, match="no edge"):
        g.path_length([0, 2])
    with pytest.raises(ValueError, match="not a node"):
        g.path_length([0, 7])


def test_arrays_stay_in_sync_after_growth_and_nearest_node():
    rng = np.random.default_rng(0)
    g = make(spatial_gate=2.0, delta=0.1)
    pts = rng.uniform(-200, 200, size=(60, 3))
    embs = rng.normal(size=(60, D))
    for i in range(60):
        g.observe(embs[i], pts[i], i)
    n = len(g)
    assert n > 16  # past the initial array capacity
    snap = g.snapshot()
    for u in range(n):
        np.testing.assert_allclose(snap["positions"][u], g.graph.nodes[u]["position"], rtol=1e-6)
        np.testing.assert_allclose(snap["descriptors"][u], g.graph.nodes[u]["descriptor"], rtol=1e-6, atol=1e-7)
    queries = rng.uniform(-250, 250, size=(20, 3))
    positions = np.array([g.graph.nodes[u]["position"] for u in range(n)])
    for q in queries:
        assert g.nearest_node(q) == int(np.argmin(np.linalg.norm(positions - q, axis=1)))


def test_snapshot_shapes_and_dtypes():
    g = make()
    g.observe(e(0), p(0), 0)
    g.observe(e(1), p(10), 1)
    g.observe(e(2), p(10, 10), 2)
    g.observe(e(0), p(0), 3)
    g.observe(e(0), p(0), 4)
    snap = g.snapshot()
    assert snap["node_ids"].tolist() == [0, 1, 2] and snap["node_ids"].dtype == np.int64
    assert snap["positions"].shape == (3, 3) and snap["positions"].dtype == np.float32
    assert snap["descriptors"].shape == (3, D) and snap["descriptors"].dtype == np.float32
    assert snap["counts"].tolist() == [3, 1, 1]
    assert snap["edges"].dtype == np.int64 and snap["edges"].tolist() == [[0, 1], [0, 2], [1, 2]]
    assert snap["edge_weights"].shape == (3,) and snap["edge_weights"].dtype == np.float32
    np.testing.assert_allclose(snap["edge_weights"], [10.05, np.hypot(10, 10) + 0.05, 10.05], rtol=1e-6)
    assert snap["edge_traversals"].tolist() == [1, 1, 1]
    assert g.stats() == {"nodes": 3, "edges": 3, "observations": 5, "traversals": 3, "bytes": g.stats()["bytes"]}
    g.reset()
    empty = g.snapshot()
    assert empty["edges"].shape == (0, 2) and empty["descriptors"].shape == (0, D) and g.current is None


NAN3 = np.array([0.0, np.nan, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"embedding": np.ones(D + 2)}, rf"\({D},\)"),
        ({"embedding": np.ones(D - 1)}, rf"\({D},\)"),
        ({"embedding": np.full(D, np.nan)}, "embedding"),
        ({"embedding": np.full(D, np.inf)}, "embedding"),
        ({"embedding": np.zeros(D)}, "nonzero"),
        ({"position": NAN3}, "position"),
        ({"position": np.array([0.0, -np.inf, 0.0])}, "position"),
        ({"position": np.zeros(2)}, r"\(3,\)"),
        ({"step": -1}, "step"),
        ({"step": 2.5}, "step"),
        ({"instruction_similarity": 1.5}, "instruction_similarity"),
        ({"instruction_similarity": float("nan")}, "instruction_similarity"),
    ],
)
def test_observe_rejects_bad_input(kwargs, match):
    g = make()
    g.observe(e(0), p(0), 0)
    args = {"embedding": e(1), "position": p(50), "step": 1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        g.observe(**args)
    assert len(g) == 1 and g.graph.number_of_edges() == 0 and g.stats()["observations"] == 1


def test_huge_finite_embedding_is_normalised():
    g = make()
    g.observe(np.full(D, 1e300), p(0), 0)
    np.testing.assert_allclose(np.linalg.norm(g.graph.nodes[0]["descriptor"]), 1.0)


def test_nearest_node_rejects_bad_position():
    g = make()
    with pytest.raises(ValueError, match="position"):
        g.nearest_node(NAN3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delta": -0.1},
        {"delta": float("nan")},
        {"spatial_gate": float("inf")},
        {"alpha": -1.0},
        {"beta": -0.5},
        {"c_instr": -0.1},
        {"embedding_dim": 0},
        {"embedding_dim": 3.0},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        TopologyConfig(**kwargs)
