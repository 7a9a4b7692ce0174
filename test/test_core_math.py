"""Normalizer, soft update, preprocess, checkpoints."""
import numpy as np
import pytest
import torch

from pick_place_rl.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from pick_place_rl.core.ddpg import DDPGAgent, DDPGParams
from pick_place_rl.core.networks import Actor, soft_update
from pick_place_rl.core.normalizer import Normalizer
from pick_place_rl.core.policy import GoalPolicy, KIND
from pick_place_rl.core.preprocess import preprocess


def test_normalizer_matches_numpy_moments_across_updates():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(1000, 4))
    norm = Normalizer(4, eps=1e-2, clip_range=5.0)
    for chunk in np.array_split(x, 7):
        norm.update(chunk)
    np.testing.assert_allclose(norm.mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.std, x.std(0), rtol=1e-4)
    z = norm.normalize(x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    assert np.abs(norm.normalize(np.full(4, 1e6))).max() == 5.0


def test_normalizer_std_floor_and_state_roundtrip():
    norm = Normalizer(2, eps=0.01)
    norm.update(np.ones((10, 2)))
    np.testing.assert_allclose(norm.std, 0.01)
    other = Normalizer(2)
    other.load_state_dict(norm.state_dict())
    np.testing.assert_array_equal(other.normalize(np.zeros(2)), norm.normalize(np.zeros(2)))
    with pytest.raises(ValueError, match='size mismatch'):
        Normalizer(3).load_state_dict(norm.state_dict())


def test_soft_update_weight_is_on_online_net():
    online, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        online.weight.fill_(1.0)
        target.weight.fill_(0.0)
    soft_update(target, online, tau=0.05)
    torch.testing.assert_close(target.weight, torch.full((2, 2), 0.05))


def test_preprocess_clips_then_normalizes():
    o, g = Normalizer(2), Normalizer(1)
    o.update(np.array([[0.0, 0.0], [2.0, 2.0]]))
    g.update(np.array([[1.0], [3.0]]))
    out = preprocess(np.array([1.0, 1e9]), np.array([2.0]), o, g)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 5.0, 0.0])


def test_target_q_is_clipped_for_sparse_rewards():
    from pick_place_rl.core.her import GoalBatch
    agent = DDPGAgent(3, 2, 2, DDPGParams(gamma=0.5, hidden=8, layers=1))
    with torch.no_grad():  # make the target critic wildly optimistic
        agent.critic_target.net[-1].bias.fill_(100.0)
    n = 16
    batch = GoalBatch(np.zeros((n, 3), np.float32), np.zeros((n, 2), np.float32),
                      np.zeros((n, 2), np.float32), -np.ones(n, np.float32),
                      np.zeros((n, 3), np.float32))
    assert agent.update(batch)['q_mean'] == 0.0  # clipped to the upper bound 0


def _agent_checkpoint(path, obs_dim=5):
    agent = DDPGAgent(obs_dim, 3, 4, DDPGParams(hidden=16, layers=2))
    agent.obs_norm.update(np.random.default_rng(0).normal(size=(10, obs_dim)))
    s = agent.state_dict()
    save_checkpoint(path, KIND, {'max_action': 1.0}, agent.spec,
                    {'actor': s['actor'], 'obs_norm': s['obs_norm'], 'goal_norm': s['goal_norm']})
    return agent


def test_checkpoint_roundtrip_gives_same_actions(tmp_path):
    agent = _agent_checkpoint(tmp_path / 'a.pt')
    policy = GoalPolicy.from_checkpoint(tmp_path / 'a.pt')
    obs = np.random.default_rng(1).normal(size=(8, 5))
    goal = np.random.default_rng(2).normal(size=(8, 3))
    np.testing.assert_allclose(policy(obs, goal), agent.act(obs, goal), atol=1e-6)


def test_checkpoint_errors_name_the_problem(tmp_path):
    path = tmp_path / 'a.pt'
    _agent_checkpoint(path)
    with pytest.raises(CheckpointError, match='not found'):
        load_checkpoint(tmp_path / 'missing.pt', KIND)
    with pytest.raises(CheckpointError, match="'dqn'"):
        load_checkpoint(path, 'dqn')
    with pytest.raises(CheckpointError, match='obs_dim is 5 in the checkpoint, expected 25'):
        GoalPolicy.from_checkpoint(path, {'obs_dim': 25})
    truncated = tmp_path / 'trunc.pt'
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match='corrupt'):
        load_checkpoint(truncated, KIND)
    old = tmp_path / 'old.pt'
    torch.save({'format_version': 0, 'kind': KIND}, old)
    with pytest.raises(CheckpointError, match='format version 0'):
        load_checkpoint(old, KIND)


def test_checkpoint_never_unpickles_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    class Evil:
        def __reduce__(self):
            return (exec, ("open('pwned', 'w').write('x')",))
    path = tmp_path / 'evil.pt'
    torch.save({'format_version': 1, 'kind': KIND, 'x': Evil()}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path, KIND)
    assert not (tmp_path / 'pwned').exists()


def test_actor_output_bounded():
    actor = Actor(4, 2, 8, 1, max_action=2.0)
    out = actor(torch.full((3, 4), 1e6))
    assert torch.all(out.abs() <= 2.0)
