"""The Mem4Nav facade: update/retrieve cascade, ablations, snapshots, stats, bad input."""

import numpy as np
import pytest
import torch

from embodia.memory.mem4nav import SOURCE_LTM_LEAF, SOURCE_LTM_NODE, SOURCE_STM, Mem4NavConfig, Mem4NavMemory

torch.set_num_threads(1)
D = 32


def make_memory(**kwargs) -> Mem4NavMemory:
    torch.manual_seed(0)
    return Mem4NavMemory(Mem4NavConfig(embed_dim=D, token_depth=2, key_dim=16, **kwargs))


def walk(memory: Mem4NavMemory, steps: int, seed: int = 0, detections: bool = True):
    """A straight walk along x with a distinct embedding per 10 m and a few points per step."""
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(steps // 10 + 2, D))
    embeddings = []
    for t in range(steps):
        position = np.array([t * 1.0, 0.0, 0.0])
        v = protos[t // 10] + 0.05 * rng.normal(size=D)
        points = position + rng.uniform(-3, 3, size=(20, 3))
        classes = rng.integers(0, 17, size=20)
        det = (np.array([1 + t % 16]), position[None] + [2.0, 1.0, 0.0]) if detections else None
        memory.update(v, position, points, classes, det)
        embeddings.append(v)
    return np.array(embeddings)


def test_update_fills_every_part():
    memory = make_memory()
    walk(memory, 40)
    stats = memory.stats()
    assert stats["leaves"] > 40 and stats["nodes"] >= 4 and stats["edges"] >= 3
    assert stats["stm_entries"] > 0 and stats["ltm_entries"] > stats["nodes"]
    assert stats["bytes"] > 0 and memory.step == 40


def test_stm_answers_near_a_recent_detection():
    memory = make_memory()
    v = walk(memory, 20)
    out = memory.retrieve(v[-1], np.array([19.0, 0.0, 0.0]))
    assert out.valid.any() and (out.sources[out.valid] == SOURCE_STM).all()
    assert out.scores[0] >= memory.config.stm_threshold
    assert memory.stats()["stm_hit_rate"] == 1.0


def test_ltm_answers_far_from_stm_entries_and_decodes_tokens():
    memory = make_memory()
    v = walk(memory, 30)
    # Far from every STM entry (relative radius 3 m): the cascade falls through to the LTM.
    out = memory.retrieve(v[5], np.array([5.0, 40.0, 0.0]))
    assert out.valid.sum() == memory.config.ltm.top_m
    assert set(out.sources[out.valid]) <= {SOURCE_LTM_LEAF, SOURCE_LTM_NODE}
    assert np.isfinite(out.embeddings).all() and np.abs(out.embeddings[out.valid]).sum() > 0
    assert out.tokens.shape == (len(out.valid), 2 * D) and np.abs(out.tokens[out.valid]).sum() > 0
    # The decoded embedding is pi_v applied to R^-1 of the stored token.
    with torch.no_grad():
        again = memory.tokens.decode_heads(torch.as_tensor(out.tokens[out.valid]))["embedding"].numpy()
    np.testing.assert_allclose(again, out.embeddings[out.valid], rtol=1e-5, atol=1e-6)
    assert memory.stats()["ltm_hit_rate"] == 1.0


def test_node_tokens_accumulate_history():
    memory = make_memory()
    walk(memory, 12)
    node_keys = [k for k in memory._read_tokens if k[0] == "node"]
    fresh = memory.tokens.fresh_read_token(1)[0]
    assert all(not torch.allclose(memory._read_tokens[k], fresh) for k in node_keys)


def test_stm_positions_stay_right_after_the_agent_moves_to_other_nodes():
    memory = make_memory()
    rng = np.random.default_rng(0)
    v = rng.normal(size=D)
    memory.update(v, np.zeros(3), detections=(np.array([5]), np.array([[1.0, 0.5, 0.0]])))
    for x in range(2, 40):  # walk away: new graph nodes every few metres
        memory.update(rng.normal(size=D), np.array([float(x), 0.0, 0.0]))
    assert memory.stats()["nodes"] >= 4
    near = memory.retrieve(v, np.array([1.5, 0.0, 0.0]))
    assert near.sources[0] == SOURCE_STM
    np.testing.assert_allclose(near.positions[0], [-0.5, 0.5, 0.0], atol=1e-5)  # object relative to the query
    far = memory.retrieve(v, np.array([35.5, 0.0, 0.0]))
    assert SOURCE_STM not in far.sources[far.valid]


def test_rejected_update_changes_nothing():
    memory = make_memory()
    walk(memory, 3)
    before = memory.stats()
    bad = [
        {"detections": (np.array([1]), np.array([[np.nan, 0.0, 0.0]]))},
        {"detections": (np.array([1.7]), np.array([[1.0, 0.0, 0.0]]))},
        {"detections": (np.array([1, 2]), np.array([[1.0, 0.0, 0.0]]))},
        {"points": np.full((4, 3), 1e300)},
        {"points": np.ones((4, 3)), "point_classes": np.ones(3, dtype=int)},
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            memory.update(np.ones(D), np.array([3.0, 0.0, 0.0]), **kwargs)
    assert memory.stats() == before and memory.step == 3


def test_leaf_token_slots_link_octree_and_ltm():
    memory = make_memory()
    walk(memory, 5)
    snap = memory.snapshot()
    slots = snap["octree/token_slots"]
    linked = slots[slots >= 0]
    assert linked.size > 0
    assert set(linked.tolist()) <= set(snap["ltm/leaf/ids"].tolist())
    assert snap["tokens/read"].shape == (len(snap["tokens/ids"]), D)


def test_ltm_without_octree_and_graph_is_rejected():
    with pytest.raises(ValueError, match="use_ltm needs"):
        Mem4NavConfig(use_octree=False, use_graph=False)


@pytest.mark.parametrize(
    "switches",
    [{"use_octree": False}, {"use_graph": False}, {"use_stm": False}, {"use_ltm": False}],
)
def test_ablations(switches):
    memory = make_memory(**switches)
    v = walk(memory, 25)
    out = memory.retrieve(v[-1], np.array([24.0, 0.0, 0.0]))
    stats = memory.stats()
    if switches.get("use_octree") is False:
        assert stats["leaves"] == 0
    if switches.get("use_graph") is False:
        assert stats["nodes"] == 0
    if switches.get("use_stm") is False:
        assert stats["stm_entries"] == 0 and SOURCE_STM not in out.sources
    if switches.get("use_ltm") is False:
        assert stats["ltm_entries"] == 0 and (out.sources[out.valid] == SOURCE_STM).all()
    assert out.valid.any()


def test_reset_forgets_but_keeps_parameters():
    memory = make_memory()
    params = [p.detach().clone() for p in memory.parameters()]
    walk(memory, 10)
    memory.reset()
    stats = memory.stats()
    assert stats["leaves"] == stats["nodes"] == stats["stm_entries"] == stats["ltm_entries"] == 0
    assert all(torch.equal(a, b) for a, b in zip(params, memory.parameters(), strict=True))


def test_snapshot_arrays():
    memory = make_memory()
    walk(memory, 15)
    snap = memory.snapshot()
    assert snap["octree/keys"].shape[0] == memory.stats()["leaves"]
    assert snap["graph/positions"].shape == (memory.stats()["nodes"], 3)
    assert all(isinstance(v, np.ndarray) for v in snap.values())


def test_bad_input():
    memory = make_memory()
    with pytest.raises(ValueError, match=f"\\({D},\\)"):
        memory.update(np.zeros(D + 1), np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        memory.update(np.full(D, np.nan), np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        memory.update(np.ones(D), np.array([0.0, np.inf, 0.0]))
    with pytest.raises(ValueError, match="finite"):
        memory.update(np.ones(D), np.zeros(3), points=np.array([[np.nan, 0.0, 0.0]]))
    with pytest.raises(ValueError):
        Mem4NavConfig(use_stm=False, use_ltm=False)
    with pytest.raises(ValueError):
        Mem4NavConfig(embed_dim=0)


def test_points_outside_the_extent_are_clipped_and_counted():
    memory = Mem4NavMemory(Mem4NavConfig(embed_dim=D, token_depth=1, key_dim=8))
    # Default: 16 levels of 1 m leaves, a 65 km cube centred on the first point.
    memory.update(np.ones(D), np.zeros(3), points=np.array([[0.0, 0.0, 0.0], [1e6, 0.0, 0.0]]))
    assert memory.stats()["points_clipped"] == 1.0


# ---------------------------------------------------------------------- locate: the cascade keyed by a class
def street_walk(memory: Mem4NavMemory, steps: int, landmarks: dict[int, tuple[np.ndarray, int]], seed: int = 0):
    """A walk along x (1 m a step) seeing only unlabelled points, except landmark ``class -> (position, step)``
    seen (points and a detection) at its step and the two after it."""
    rng = np.random.default_rng(seed)
    for t in range(steps):
        position = np.array([t * 1.0, 0.0, 0.0])
        points = position + rng.uniform(-3, 3, size=(20, 3))
        classes = np.zeros(20, dtype=np.int64)
        det_classes, det_positions = [], []
        for class_id, (where, at) in landmarks.items():
            if at <= t < at + 3:
                points = np.concatenate([points, where + rng.normal(0, 0.2, size=(10, 3))])
                classes = np.concatenate([classes, np.full(10, class_id)])
                det_classes.append(class_id)
                det_positions.append(where)
        detections = (np.array(det_classes, dtype=np.int64), np.array(det_positions).reshape(-1, 3))
        memory.update(rng.normal(size=D), position, points, classes, detections)


def test_locate_finds_a_landmark_written_long_ago_and_nothing_for_a_class_never_seen():
    memory = make_memory()
    tower = np.array([5.0, 5.5, 1.0])
    street_walk(memory, 200, {7: (tower, 5)})  # seen at steps 5-7, then 190 steps of other views
    found = memory.locate(7)
    assert found, "the landmark seen 190 steps ago was not found"
    best = found[0]
    assert np.linalg.norm(best.position[:2] - tower[:2]) < 1.0
    assert best.support == pytest.approx(best.stm_support + best.leaf_support) and best.leaf_support > 0
    assert best.passed  # 5.5 m beside the path the graph recorded
    assert memory.locate(3) == []  # never seen
    memory.reset()
    assert memory.locate(7) == []


def test_locate_tells_passed_landmarks_from_look_alikes_seen_from_afar():
    memory = make_memory()
    near, far = np.array([20.0, 5.0, 1.0]), np.array([40.0, 30.0, 1.0])
    street_walk(memory, 60, {4: (near, 18), 9: (far, 38)})
    far_found = memory.locate(9)
    assert len(far_found) == 1 and not far_found[0].passed
    assert memory.locate(4)[0].passed
    streets = (np.array([[40.0, 25.0]]), np.array([[40.0, 35.0]]))  # a street the caller knows runs past it
    assert memory.locate(9, streets=streets)[0].passed


@pytest.mark.parametrize(
    ("switches", "stm", "leaves"),
    [({}, True, True), ({"use_ltm": False}, True, False), ({"use_stm": False}, False, True),
     ({"use_octree": False}, True, False)],
)  # fmt: skip
def test_locate_reads_only_the_parts_the_ablation_keeps(switches, stm, leaves):
    memory = make_memory(**switches)
    street_walk(memory, 30, {7: (np.array([10.0, 5.0, 1.0]), 8)})
    found = memory.locate(7)
    assert len(found) == 1
    assert (found[0].stm_support > 0) == stm and (found[0].leaf_support > 0) == leaves


def test_plan_path_and_streets_come_from_the_topology_graph():
    memory = make_memory()
    street_walk(memory, 40, {})
    starts, ends = memory.driven_streets()
    assert len(starts) == len(ends) >= 3
    path = memory.plan_path(np.array([0.0, 0.0]))
    assert len(path) >= 2 and path[0] == memory.graph.current
    assert np.linalg.norm(memory.node_positions(path)[-1]) < 5.0  # ends at the node nearest the start
    graphless = make_memory(use_graph=False)
    street_walk(graphless, 10, {})
    assert graphless.driven_streets() is None and graphless.plan_path(np.zeros(2)) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"class_id": 0}, "class_id must be an integer in"), ({"class_id": 17}, "class_id must be an integer in"),
     ({"class_id": 2.0}, "class_id must be an integer in"), ({"class_id": True}, "class_id must be an integer in"),
     ({"class_id": 3, "cluster_radius": 0.0}, "cluster_radius must be"),
     ({"class_id": 3, "pass_distance": float("nan")}, "pass_distance must be")],
)  # fmt: skip
def test_locate_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_memory().locate(**kwargs)
    with pytest.raises(ValueError, match="goal must have shape"):
        make_memory().plan_path(np.zeros(3))


def test_learning_facade_writes_decodes_and_freezes_like_the_token_module():
    torch.manual_seed(0)
    memory = Mem4NavMemory(Mem4NavConfig(embed_dim=8))
    v = torch.randn(3, 8)
    fresh = memory.fresh_read_tokens(3)
    assert fresh.shape == (3, 8) and torch.equal(fresh, memory.tokens.fresh_read_token(3))
    written = memory.written_tokens(fresh, v)  # (3, 16)
    assert written.shape == (3, 16) and torch.equal(written, memory.tokens.write(fresh, v))
    decoded = memory.tokens.decode_heads(written, heads=("embedding",))["embedding"]
    assert torch.equal(memory.decode_embeddings(written), decoded) and decoded.shape == (3, 8)
    assert memory.cycle_loss(v).shape == () and float(memory.cycle_loss(v).detach()) >= 0
    memory.freeze_decoders()
    assert not any(p.requires_grad for p in memory.tokens.pi_p.parameters())
    assert not any(p.requires_grad for p in memory.tokens.pi_d.parameters())
