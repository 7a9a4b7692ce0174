"""HER sampling, replay buffer and reward math."""
import numpy as np
import pytest

from pick_place_rl.core.her import HerSampler
from pick_place_rl.core.replay import EpisodeReplayBuffer
from pick_place_rl.core.rewards import sparse_reward


def make_episodes(n: int, horizon: int, start: int = 0) -> dict[str, np.ndarray]:
    """Episodes whose achieved goal encodes (episode id, step) so indices can be read back."""
    ep_ids = np.arange(start, start + n, dtype=np.float32)[:, None]
    steps = np.arange(horizon + 1, dtype=np.float32)[None, :]
    ag = np.stack([np.broadcast_to(ep_ids, (n, horizon + 1)),
                   np.broadcast_to(steps, (n, horizon + 1)),
                   np.zeros((n, horizon + 1), np.float32)], axis=-1)
    return {'obs': ag.copy(), 'ag': ag, 'g': np.full((n, horizon, 3), 100.0, np.float32),
            'actions': np.zeros((n, horizon, 2), np.float32)}


def test_future_goals_come_from_same_episode_at_or_after_next_step():
    horizon = 10
    buf = EpisodeReplayBuffer(50 * horizon, horizon, 3, 3, 2)
    buf.store(make_episodes(50, horizon))
    sampler = HerSampler(sparse_reward, replay_k=4)
    batch = sampler.sample(buf.data, buf.n_episodes, 20000, np.random.default_rng(0))
    relabelled = batch.goal[:, 0] != 100.0
    # fraction relabelled = 1 - 1/(1+k) = 0.8
    assert abs(relabelled.mean() - 0.8) < 0.02
    ep_of_obs, t = batch.obs[:, 0], batch.obs[:, 1]
    ep_of_goal, t_goal = batch.goal[relabelled, 0], batch.goal[relabelled, 1]
    np.testing.assert_array_equal(ep_of_goal, ep_of_obs[relabelled])
    assert np.all(t_goal >= t[relabelled] + 1) and np.all(t_goal <= horizon)
    # every future offset, including the transition's own next state, is drawn
    assert set(np.unique(t_goal - t[relabelled]).astype(int)) == set(range(1, horizon + 1))
    # next_obs is the step after obs
    np.testing.assert_array_equal(batch.next_obs[:, 1], t + 1)


def test_relabelled_rewards_are_sparse_and_consistent():
    horizon = 5
    buf = EpisodeReplayBuffer(100, horizon, 3, 3, 2)
    buf.store(make_episodes(4, horizon))
    batch = HerSampler(sparse_reward, 4).sample(buf.data, buf.n_episodes, 500,
                                                np.random.default_rng(1))
    assert set(np.unique(batch.reward)) <= {-1.0, 0.0}
    hit = batch.goal[:, 1] == batch.next_obs[:, 1]  # goal = achieved state after the action
    np.testing.assert_array_equal(batch.reward[hit], 0.0)
    np.testing.assert_array_equal(batch.reward[batch.goal[:, 0] == 100.0], -1.0)


def test_sparse_reward_matches_fetch_env():
    from pick_place_rl.sim.registry import make_env
    env = make_env('FetchPush-v4')
    rng = np.random.default_rng(0)
    a, d = rng.normal(size=(64, 3)) * 0.05, rng.normal(size=(64, 3)) * 0.05
    np.testing.assert_array_equal(sparse_reward(a, d), env.unwrapped.compute_reward(a, d, None))


def test_buffer_wraps_around_oldest_first():
    horizon = 4
    buf = EpisodeReplayBuffer(3 * horizon, horizon, 3, 3, 2)
    assert buf.max_episodes == 3
    buf.store(make_episodes(2, horizon, start=0))
    buf.store(make_episodes(2, horizon, start=2))  # episode 3 overwrites slot 0
    assert buf.n_episodes == 3 and buf.total_episodes == 4 and len(buf) == 12
    np.testing.assert_array_equal(buf.data['ag'][:, 0, 0], [3, 1, 2])
    buf.store(make_episodes(5, horizon, start=10))  # more than capacity in one call
    assert sorted(buf.data['ag'][:, 0, 0]) == [12, 13, 14]


def test_buffer_rejects_wrong_shapes(tmp_path):
    buf = EpisodeReplayBuffer(40, 4, 3, 3, 2)
    bad = make_episodes(1, 5)
    with pytest.raises(ValueError, match='shape'):
        buf.store(bad)
    buf.store(make_episodes(2, 4))
    buf.save(tmp_path / 'r.npz')
    other = EpisodeReplayBuffer(40, 4, 3, 3, 2)
    other.load(tmp_path / 'r.npz')
    np.testing.assert_array_equal(other.data['ag'], buf.data['ag'])
    assert other.n_episodes == 2


def test_sampler_needs_reward_fn_to_relabel():
    with pytest.raises(ValueError):
        HerSampler(None, replay_k=4)


def test_n_step_returns_sum_discounted_relabelled_rewards_and_stop_at_horizon():
    horizon, gamma, n = 10, 0.9, 3
    buf = EpisodeReplayBuffer(20 * horizon, horizon, 3, 3, 2)
    buf.store(make_episodes(20, horizon))
    sampler = HerSampler(sparse_reward, replay_k=4, n_step=n, gamma=gamma)
    batch = sampler.sample(buf.data, buf.n_episodes, 5000, np.random.default_rng(2))
    t, t_next = batch.obs[:, 1], batch.next_obs[:, 1]
    steps = np.minimum(n, horizon - t)
    np.testing.assert_array_equal(t_next, t + steps)  # bootstrap n steps later, or at T
    np.testing.assert_allclose(batch.discount, gamma ** steps, rtol=1e-6)
    # the achieved goal encodes the step, so the reward of step t+i is 0 iff goal step == t+i+1
    goal_t = np.where(batch.goal[:, 0] == 100.0, -1, batch.goal[:, 1])
    expected = np.zeros(len(t))
    for i in range(n):
        hit = goal_t == t + i + 1
        expected += np.where(i < steps, gamma ** i * np.where(hit, 0.0, -1.0), 0.0)
    np.testing.assert_allclose(batch.reward, expected, rtol=1e-6)
    assert (goal_t == t + 1).any() and (steps < n).any()  # both branches were exercised


def test_one_step_sampler_keeps_the_recipe_discount():
    buf = EpisodeReplayBuffer(100, 5, 3, 3, 2)
    buf.store(make_episodes(4, 5))
    assert HerSampler(sparse_reward, 4).sample(buf.data, 4, 8,
                                               np.random.default_rng(0)).discount is None
    with pytest.raises(ValueError, match='n_step'):
        HerSampler(sparse_reward, 4, n_step=0)
