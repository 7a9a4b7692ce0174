"""DQN core: target math, replay, schedule, checkpoints, grasp policy errors, reacher learning."""
import numpy as np
import pytest
import torch

from pick_place_rl.core.checkpoint import CheckpointError, save_checkpoint
from pick_place_rl.core.dqn import (
    DQNAgent,
    DQNBatch,
    DQNParams,
    fold_n_step,
    LinearSchedule,
    random_shift_batch,
    td_targets,
    TransitionReplay,
)
from pick_place_rl.core.dqn_nets import (
    build_net,
    ConvQNet,
    KIND_CONV,
    KIND_MLP,
    KIND_QMAP,
    MLPQNet,
    QMapNet,
)
from pick_place_rl.core.grasp_policy import GraspPolicy
from pick_place_rl.sim.reacher_env import JointReacherEnv
from pick_place_rl.train.dqn import DQNReacherConfig, DQNTrainer, make_dqn_env


def test_double_dqn_targets_by_hand():
    online = torch.tensor([[1.0, 5.0, 2.0], [0.0, 0.0, 9.0]])
    target = torch.tensor([[10.0, 3.0, 20.0], [4.0, 8.0, 6.0]])
    rewards = torch.tensor([1.0, 0.5])
    dones = torch.tensor([0.0, 1.0])
    # Double: online picks action 1 (row 0) -> target values it at 3.
    y = td_targets(online, target, rewards, dones, gamma=0.9, double=True)
    assert torch.allclose(y, torch.tensor([1.0 + 0.9 * 3.0, 0.5]))
    # Plain DQN: max of the target row (20); terminal row never bootstraps.
    y = td_targets(online, target, rewards, dones, gamma=0.9, double=False)
    assert torch.allclose(y, torch.tensor([1.0 + 0.9 * 20.0, 0.5]))


def test_update_uses_huber_loss_on_the_taken_action():
    torch.manual_seed(0)
    net = MLPQNet(2, 3, hidden=8)
    agent = DQNAgent(net, DQNParams(lr=0.0, gamma=0.0, huber_delta=1.0))
    obs = torch.zeros(2, 2)
    q0 = net(obs).detach()
    batch = DQNBatch(obs, torch.tensor([0, 2]), torch.tensor([q0[0, 0] + 3.0, q0[1, 2] + 0.5]),
                     obs, torch.ones(2))
    # errors 3 (linear part: 3 - 0.5) and 0.5 (quadratic part: 0.125)
    loss = agent.update(batch)['loss']
    assert loss == pytest.approx((2.5 + 0.125) / 2, rel=1e-5)


def test_learning_moves_q_towards_the_target_and_target_net_follows():
    torch.manual_seed(0)
    agent = DQNAgent(MLPQNet(2, 2, hidden=16), DQNParams(lr=1e-2, gamma=0.0))
    obs = torch.ones(8, 2)
    batch = DQNBatch(obs, torch.zeros(8, dtype=torch.int64), torch.ones(8), obs, torch.ones(8))
    for _ in range(200):
        agent.update(batch)
    assert agent.online(obs)[0, 0].item() == pytest.approx(1.0, abs=0.05)
    assert abs(agent.target(obs)[0, 0].item() - 1.0) > 0.05  # not synced yet
    agent.update_target()
    assert torch.equal(agent.target(obs), agent.online(obs))


def test_n_step_fold_and_monte_carlo_targets_skip_the_bootstrap():
    steps = [('s0', 0, 0.0, 's1', False, 'aux0'), ('s1', 1, 0.0, 's2', False, 'aux1'),
             ('s2', 2, 1.0, 's3', True, 'aux2')]
    assert fold_n_step(steps, 0.9) == ('s0', 0, pytest.approx(0.81), 's3', True,
                                       pytest.approx(0.729), 'aux0')
    assert fold_n_step(steps[:2], 0.5) == ('s0', 0, 0.0, 's2', False, 0.25, 'aux0')
    with pytest.raises(ValueError, match='empty window'):
        fold_n_step([], 0.9)
    # per-transition discounts: row 0 bootstraps at 0.25, row 1 is terminal
    y = td_targets(torch.tensor([[1.0, 4.0]] * 2), torch.tensor([[8.0, 2.0]] * 2),
                   torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0]),
                   torch.tensor([0.25, 0.9]))
    assert torch.allclose(y, torch.tensor([1.5, 1.0]))
    # Monte Carlo batch (nothing bootstraps): next_obs is never passed through a net, so a
    # next_obs of the wrong shape goes unnoticed and the Q-value learns the return itself.
    torch.manual_seed(0)
    agent = DQNAgent(MLPQNet(2, 2, hidden=16), DQNParams(lr=1e-2, gamma=0.9))
    obs = torch.ones(8, 2)
    batch = DQNBatch(obs, torch.zeros(8, dtype=torch.int64), torch.full((8,), 0.59),
                     torch.zeros(8, 5), torch.ones(8), discounts=torch.full((8,), 0.9))
    for _ in range(200):
        agent.update(batch)
    assert agent.online(obs)[0, 0].item() == pytest.approx(0.59, abs=0.05)


def test_replay_keeps_aux_targets_and_discounts_and_refuses_snapshots_without_them():
    replay = TransitionReplay(4, (2,), aux_dim=3, discounts=True)
    replay.add(np.ones(2), 1, 0.5, np.zeros(2), False, np.arange(3.0), 0.81)
    batch = replay.sample(2, np.random.default_rng(0))
    assert torch.equal(batch.aux, torch.tensor([[0.0, 1.0, 2.0]] * 2))
    assert torch.allclose(batch.discounts, torch.tensor([0.81, 0.81]))
    with pytest.raises(ValueError, match='keeps 3 auxiliary targets'):
        replay.add(np.ones(2), 1, 0.5, np.zeros(2), False, None, 0.9)
    with pytest.raises(ValueError, match='keeps a discount per transition'):
        replay.add(np.ones(2), 1, 0.5, np.zeros(2), False, np.zeros(3))
    copy = TransitionReplay(4, (2,), aux_dim=3, discounts=True)
    copy.load_state_dict(replay.state_dict())
    assert np.array_equal(copy.aux[:1], replay.aux[:1]) and copy.discounts[0] == 0.81
    plain = TransitionReplay(4, (2,))
    plain.add(np.ones(2), 1, 0.5, np.zeros(2), False)
    with pytest.raises(ValueError, match='no 3 auxiliary targets'):
        copy.load_state_dict(plain.state_dict())
    with pytest.raises(ValueError, match='no per-transition discounts'):
        TransitionReplay(4, (2,), discounts=True).load_state_dict(plain.state_dict())


def test_aux_head_learns_its_targets_and_the_export_serves_q_only(tmp_path):
    """The auxiliary loss trains the conv net's shared features; serving loads the file with
    its aux head and still returns one Q-value per move."""
    torch.manual_seed(0)
    net = ConvQNet(48, 7, 8, aux_dim=2)
    agent = DQNAgent(net, DQNParams(lr=1e-3, gamma=0.0, aux_weight=1.0))
    frames = torch.randint(0, 256, (16, 48, 48, 3), dtype=torch.uint8)
    # targets a function of the frames: mean red and green intensity
    aux = frames[..., :2].float().mean(dim=(1, 2)) / 255.0 * 4.0
    batch = DQNBatch(frames, torch.zeros(16, dtype=torch.int64), torch.zeros(16), frames,
                     torch.ones(16), aux)
    first = agent.update(batch)['aux_loss']
    for _ in range(150):
        last = agent.update(batch)['aux_loss']
    assert last < 0.1 * first, (first, last)
    with pytest.raises(ValueError, match='no auxiliary head'):
        ConvQNet(48, 7, 8).forward_aux(frames)
    spec = {'image_size': 48, 'n_actions': 7, 'width': 8, 'aux_dim': 2}
    save_checkpoint(tmp_path / 'q.pt', KIND_CONV, {}, spec, {'online': net.state_dict()})
    policy = GraspPolicy(tmp_path / 'q.pt', KIND_CONV)
    assert policy.q_values(frames[0].numpy()).shape == (7,)
    # CoordConv: the same frame at another place in the image reads differently even where a
    # plain conv's features would only move; the file round-trips through serving
    coord = ConvQNet(48, 7, 8, aux_dim=2, coords=True)
    assert coord.features[0].in_channels == 5
    spec = {**spec, 'coords': True}
    save_checkpoint(tmp_path / 'c.pt', KIND_CONV, {}, spec, {'online': coord.state_dict()})
    with torch.no_grad():
        expected = coord(frames[:1])[0].numpy()
    np.testing.assert_allclose(GraspPolicy(tmp_path / 'c.pt', KIND_CONV).q_values(
        frames[0].numpy()), expected, rtol=1e-5, atol=1e-6)


def test_aux_target_weights_make_a_weighted_mean_and_the_trainer_favours_the_objects(
        tmp_path):
    """Per-target weights scale each target's Huber term; the classic trainer's
    aux_object_weight raises the object offset and map against the rest, at mean 1."""
    from pick_place_rl.train.dqn import DQNConfig
    torch.manual_seed(0)
    net = ConvQNet(48, 7, 8, aux_dim=2)
    agent = DQNAgent(net, DQNParams(gamma=0.0, aux_weight=1.0, aux_target_weights=(2.0, 0.0)))
    frames = torch.randint(0, 256, (4, 48, 48, 3), dtype=torch.uint8)
    aux = torch.tensor([[0.3, 9.0]]).repeat(4, 1)
    with torch.no_grad():
        pred = net.forward_aux(frames)[1]
    expected = 2.0 * torch.nn.functional.huber_loss(pred[:, 0], aux[:, 0],
                                                    reduction='none').sum() / 8
    info = agent.update(DQNBatch(frames, torch.zeros(4, dtype=torch.int64), torch.zeros(4),
                                 frames, torch.ones(4), aux))
    assert info['aux_loss'] == pytest.approx(expected.item(), rel=1e-5)
    trainer = DQNTrainer(DQNConfig(out_dir=str(tmp_path), n_objects=2, aux_weight=1.0,
                                   aux_object_weight=5.0, progress=False, tensorboard=False))
    weights = np.array(trainer.agent.params.aux_target_weights)
    parts = trainer.eval_env.aux_slices()
    assert weights.shape == (trainer.eval_env.aux_dim,)
    covered = np.concatenate([np.arange(weights.size)[part] for part in parts.values()])
    np.testing.assert_array_equal(covered, np.arange(weights.size))  # in order, no gaps
    assert weights.mean() == pytest.approx(1.0)
    assert np.all(weights[parts['object_map']] == 5.0 * weights[parts['masks']][0])
    assert np.all(weights[parts['object_offset']] == weights[parts['object_map']][0])
    assert np.all(weights[parts['gripper_xy']] == weights[parts['masks']][0])
    with pytest.raises(ValueError, match='aux_object_weight must be > 0'):
        DQNTrainer(DQNConfig(out_dir=str(tmp_path), aux_weight=1.0, aux_object_weight=0.0))


def test_foveal_net_crops_where_its_point_says_and_learns_the_point(tmp_path):
    """The foveal Q-net's Q-values depend on the crop around its predicted gripper point; the
    auxiliary loss moves that point to the target, and the file serves through GraspPolicy."""
    from pick_place_rl.core.dqn_nets import FovealQNet
    torch.manual_seed(0)
    net = FovealQNet(48, 7, 16, aux_dim=2 + 3 + 2 * 144, aux_masks=2)
    frames = torch.randint(0, 256, (16, 48, 48, 3), dtype=torch.uint8)
    q, aux = net.forward_aux(frames)
    assert q.shape == (16, 7) and aux.shape == (16, 293)
    aux_target = torch.zeros(16, 293)
    aux_target[:, 3:5] = torch.tensor([0.5, -0.25])  # the gripper point, in [-1, 1]
    agent = DQNAgent(net, DQNParams(lr=2e-3, gamma=0.0, aux_weight=1.0))
    batch = DQNBatch(frames, torch.zeros(16, dtype=torch.int64), torch.zeros(16), frames,
                     torch.ones(16), aux_target)
    for _ in range(60):
        agent.update(batch)
    with torch.no_grad():
        point = net.forward_aux(frames)[1][:, 3:5]
    assert torch.allclose(point, aux_target[:, 3:5], atol=0.1), point[:2]
    spec = {'image_size': 48, 'n_actions': 7, 'width': 16, 'aux_dim': 293, 'aux_masks': 2,
            'fovea': True}
    save_checkpoint(tmp_path / 'f.pt', KIND_CONV, {}, spec, {'online': net.state_dict()})
    policy = GraspPolicy(tmp_path / 'f.pt', KIND_CONV)
    assert isinstance(policy.net, FovealQNet)
    with torch.no_grad():
        np.testing.assert_allclose(policy.q_values(frames[0].numpy()), net(frames[:1])[0],
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match='no auxiliary head'):
        FovealQNet(48, 7, 16).forward_aux(frames)


def test_soft_target_update_weights_the_online_net_by_tau():
    online, target = MLPQNet(2, 2, 4), MLPQNet(2, 2, 4)
    agent = DQNAgent(online, DQNParams(tau=0.25))
    agent.target.load_state_dict(target.state_dict())
    before = [p.clone() for p in agent.target.parameters()]
    agent.update_target()
    for b, t, o in zip(before, agent.target.parameters(), online.parameters()):
        assert torch.allclose(t, 0.75 * b + 0.25 * o)



def test_random_shift_moves_both_frames_by_one_offset_with_edges_replicated():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (16, 12, 12, 3), dtype=np.uint8)
    obs, next_obs = torch.from_numpy(frames), torch.from_numpy(255 - frames)
    batch = DQNBatch(obs, torch.arange(16), torch.zeros(16), next_obs, torch.zeros(16))
    out = random_shift_batch(batch, 2, np.random.default_rng(1))
    assert out.obs.shape == obs.shape and out.obs.dtype == torch.uint8
    assert torch.equal(out.actions, batch.actions)
    # next_obs was 255 - obs: under one shared offset it still is.
    assert torch.equal(out.next_obs, 255 - out.obs)
    moved = 0
    for i in range(16):
        padded = np.pad(frames[i], ((2, 2), (2, 2), (0, 0)), mode='edge')
        hits = [(r, c) for r in range(5) for c in range(5)
                if np.array_equal(padded[r:r + 12, c:c + 12], out.obs[i].numpy())]
        assert hits, f'frame {i} is not a shifted crop of its padded original'
        moved += hits[0] != (2, 2)
    assert moved >= 12  # 24 of 25 offsets move the frame
    assert random_shift_batch(batch, 0, rng) is batch


def test_epsilon_schedule():
    eps = LinearSchedule(1.0, 0.1, 100)
    assert eps(0) == 1.0 and eps(50) == pytest.approx(0.55) and eps(100) == eps(10**6) == 0.1


def test_replay_ring_buffer_and_snapshot():
    rb = TransitionReplay(4, (2, 2), np.uint8)
    for i in range(6):
        rb.add(np.full((2, 2), i), i, float(i), np.full((2, 2), i + 1), i == 5)
    assert rb.size == 4 and rb.pos == 2
    assert sorted(rb.actions.tolist()) == [2, 3, 4, 5]
    batch = rb.sample(16, np.random.default_rng(0))
    assert batch.obs.dtype == torch.uint8 and batch.obs.shape == (16, 2, 2)
    assert torch.all(batch.next_obs.int() == batch.obs.int() + 1)
    assert torch.all(batch.dones == (batch.actions == 5).float())
    copy = TransitionReplay(4, (2, 2), np.uint8)
    copy.load_state_dict(rb.state_dict())
    np.testing.assert_array_equal(copy.obs, rb.obs)
    assert copy.pos == rb.pos and copy.size == rb.size


def test_qmap_net_is_fully_convolutional_in_env_action_order():
    net = QMapNet(image_size=16, in_channels=4, n_yaw=3, width=4)
    q = net(torch.zeros(2, 4, 16, 16))
    assert q.shape == (2, 3 * 16 * 16) == (2, net.n_actions)
    with pytest.raises(ValueError, match='multiple of 4'):
        QMapNet(image_size=30)
    assert ConvQNet(48, 7, 8)(torch.zeros(1, 48, 48, 3, dtype=torch.uint8)).shape == (1, 7)


def _save_net(path, kind, net, spec):
    save_checkpoint(path, kind, {}, spec, {'online': net.state_dict()})


def test_grasp_policy_round_trip_and_bad_input(tmp_path):
    torch.manual_seed(0)
    spec = {'image_size': 16, 'in_channels': 4, 'n_yaw': 2, 'width': 4, 'n_actions': 512}
    net = build_net(KIND_QMAP, spec)
    _save_net(tmp_path / 'qmap.pt', KIND_QMAP, net, spec)
    policy = GraspPolicy(tmp_path / 'qmap.pt')
    image = np.random.default_rng(0).random((4, 16, 16)).astype(np.float32)
    expected = net(torch.from_numpy(image)[None])[0].detach().numpy()
    np.testing.assert_allclose(policy.q_values(image).ravel(), expected, rtol=1e-6)
    grasp = policy.grasp(image)
    assert grasp.action == int(expected.argmax())
    assert (grasp.yaw_bin * 16 + grasp.row) * 16 + grasp.col == grasp.action
    assert grasp.q == pytest.approx(float(expected.max()))
    with pytest.raises(ValueError, match=r'shape \(4, 16, 16\).*got \(4, 32, 32\)'):
        policy.grasp(np.zeros((4, 32, 32), np.float32))
    with pytest.raises(ValueError, match='NaN'):
        policy.grasp(np.full((4, 16, 16), np.nan, np.float32))
    # the other network's checkpoint: a clear error naming both kinds
    with pytest.raises(CheckpointError, match="'dqn_grasp_qmap' checkpoint, expected "
                                              "'dqn_grasp_conv'"):
        GraspPolicy(tmp_path / 'qmap.pt', kind=KIND_CONV)
    conv_spec = {'image_size': 48, 'n_actions': 7, 'width': 8}
    _save_net(tmp_path / 'conv.pt', KIND_CONV, build_net(KIND_CONV, conv_spec), conv_spec)
    with pytest.raises(CheckpointError, match='expected .dqn_grasp_qmap.'):
        GraspPolicy(tmp_path / 'conv.pt')
    conv = GraspPolicy(tmp_path / 'conv.pt', kind=KIND_CONV)
    assert 0 <= conv.act(np.zeros((48, 48, 3), np.uint8)) < 7
    with pytest.raises(ValueError, match=r'\(48, 48, 3\)'):
        conv.act(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match='unknown grasp network kind'):
        GraspPolicy(tmp_path / 'conv.pt', kind=KIND_MLP)


def test_reacher_env_actions_and_rewards():
    env = JointReacherEnv(reward_type='sparse')
    obs, _ = env.reset(seed=0)
    assert env.action_space.n == 8 and obs.shape == env.observation_space.shape
    q0 = env.q.copy()
    env.step(5)  # joint 2, +dtheta
    assert np.allclose(env.q - q0, [0, 0, env.dtheta, 0])
    _, reward, *_ = env.step(4)
    assert reward in (0.0, 1.0)
    with pytest.raises(ValueError, match='reward_type'):
        JointReacherEnv(reward_type='shaped')


def _reacher_config(tmp_path, **kw):
    base = dict(out_dir=str(tmp_path), minutes=5.0, epochs=6, n_eval_episodes=20,
                progress=False, tensorboard=False)
    return DQNReacherConfig(**{**base, **kw})


@pytest.mark.parametrize('envs', [dict(async_env=False), dict(async_env=True),
                                  dict(async_env=True, n_envs=2)],
                         ids=['in_process', 'env_worker', 'two_env_workers'])
def test_reacher_learns_fast(tmp_path, envs):
    """3,000 env steps (about 10 CPU-seconds) of DQN: the greedy policy reaches far more goals
    than a random one (a greedy distance-descent oracle reaches about 0.95). With the env in a
    worker process the updates lag one step behind the data; it must learn all the same, and
    with two envs stepped together too."""
    trainer = DQNTrainer(_reacher_config(tmp_path, **envs))
    rng = np.random.default_rng(1)
    floor = trainer.evaluate(trainer.eval_env, 40, 5_000,
                             policy=lambda obs: int(rng.integers(8)))['success_rate']
    metrics = trainer.train()
    learned = trainer.evaluate(trainer.eval_env, 40, 5_000)['success_rate']
    assert floor < 0.25
    assert learned >= 0.45 and learned > floor + 0.3, (floor, learned, metrics['history'])
    assert (tmp_path / 'curve.png').is_file() and (tmp_path / 'qnet.pt').is_file()


def test_env_worker_collects_the_same_episodes_as_the_in_process_env(tmp_path):
    """Exploration only (no update is due): the worker process must step the same seeded
    episodes, so the replay ends up identical, episode ends and rewards included."""
    replays = []
    for async_env in (False, True):
        trainer = DQNTrainer(_reacher_config(tmp_path / str(async_env), epochs=1,
                                             steps_per_epoch=120, learning_starts=10_000,
                                             n_eval_episodes=1, async_env=async_env))
        trainer.train()
        assert trainer.env_steps == 120 and trainer.episodes > 0
        replays.append((trainer.replay.state_dict(), trainer.episodes))
    (sync, sync_episodes), (worker, worker_episodes) = replays
    assert worker_episodes == sync_episodes
    for key in sync:
        np.testing.assert_array_equal(worker[key], sync[key], err_msg=key)


def test_two_env_workers_step_two_seeded_episode_streams(tmp_path):
    """n_envs=2: each vector step stores one transition per env, each env on its own
    episode seed; the step count and the episode seeds stay those of the sequence."""
    trainer = DQNTrainer(_reacher_config(tmp_path, epochs=1, steps_per_epoch=120,
                                         learning_starts=10_000, n_eval_episodes=1,
                                         async_env=True, n_envs=2))
    trainer.train()
    assert trainer.env_steps == 120 and trainer.episodes > 0
    obs = trainer.replay.state_dict()['obs']
    env = make_dqn_env(trainer.config, trainer.config.train_split)
    for i in range(2):  # transitions 0 and 1 are the first steps of episodes 0 and 1
        first, _ = env.reset(seed=trainer.config.seed * 1_000_003 + i)
        np.testing.assert_array_equal(obs[i], first.astype(obs.dtype))
    with pytest.raises(ValueError, match='n_envs=2: .* needs async_env'):
        DQNTrainer(_reacher_config(tmp_path / 'x', n_envs=2))


def test_n_step_trainer_replays_discounted_returns_of_each_episode(tmp_path):
    """n_step=3 on the reacher: every stored return is a discounted sum of at most 3 rewards,
    each discount a power gamma ** k (k <= 3), and a new config error is clear."""
    trainer = DQNTrainer(_reacher_config(tmp_path, epochs=1, steps_per_epoch=120,
                                         learning_starts=10_000, n_eval_episodes=1, n_step=3))
    trainer.train()
    state = trainer.replay.state_dict()
    gamma = trainer.config.gamma
    powers = np.array([gamma, gamma ** 2, gamma ** 3], np.float32)
    assert np.all(np.isclose(state['discounts'][:, None], powers[None]).any(axis=1))
    assert trainer.replay.size >= 120 - 2  # at most n - 1 steps still pending
    with pytest.raises(ValueError, match='n_step must be >= 1'):
        DQNTrainer(_reacher_config(tmp_path / 'x', n_step=0))
    with pytest.raises(ValueError, match='only on the classic task'):
        DQNTrainer(_reacher_config(tmp_path / 'y', aux_weight=1.0))
    with pytest.raises(ValueError, match='coord_conv is for the classic conv net'):
        DQNTrainer(_reacher_config(tmp_path / 'z', coord_conv=True))
    with pytest.raises(ValueError, match='fovea needs aux_weight > 0'):
        DQNTrainer(_reacher_config(tmp_path / 'w', fovea=True))


def test_env_worker_needs_the_wall_clock_budget(tmp_path):
    with pytest.raises(ValueError, match="async_env needs budget_clock 'wall'"):
        DQNTrainer(_reacher_config(tmp_path, async_env=True, budget_clock='cpu'))


def test_trainer_checkpoint_round_trip_and_resume(tmp_path):
    cfg = _reacher_config(tmp_path, epochs=1, steps_per_epoch=300, n_eval_episodes=2)
    first = DQNTrainer(cfg)
    first.train()
    obs = np.random.default_rng(0).random((5, 14)).astype(np.float32)
    resumed = DQNTrainer(_reacher_config(tmp_path, epochs=2, steps_per_epoch=300,
                                         n_eval_episodes=2, resume=True))
    np.testing.assert_array_equal(resumed.agent.q_values(obs), first.agent.q_values(obs))
    assert resumed.replay.size == first.replay.size == 300
    assert resumed.env_steps == 300 and resumed.epoch == 1
    metrics = resumed.train()
    assert metrics['epochs'] == 2 and metrics['env_steps'] == 600
    # a checkpoint of another network kind is refused with a clear error
    save_checkpoint(tmp_path / 'checkpoint.pt', KIND_QMAP, {}, {}, {})
    with pytest.raises(CheckpointError, match='expected .dqn_reacher_mlp.'):
        DQNTrainer(_reacher_config(tmp_path, resume=True))


def test_stop_event_ends_training_at_a_cycle_boundary_with_outputs(tmp_path):
    trainer = DQNTrainer(_reacher_config(tmp_path, epochs=50, n_eval_episodes=2))
    cycles = []

    def on_cycle():
        cycles.append(trainer.env_steps)
        if len(cycles) == 30:  # in the second epoch (cycles of 25 steps, epochs of 500)
            trainer.stop.set()

    trainer.on_cycle = on_cycle
    metrics = trainer.train()
    assert metrics['epochs'] == 1 and trainer.env_steps == 500 + 11 * 25
    assert (tmp_path / 'qnet.pt').is_file() and (tmp_path / 'metrics.json').is_file()


def test_bf16_update_keeps_float32_q_and_tracks_the_float32_step():
    spec = {'image_size': 48, 'n_actions': 7, 'width': 8}
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.integers(0, 256, (8, 48, 48, 3), dtype=np.uint8))
    batch = DQNBatch(frames, torch.arange(8) % 7, torch.rand(8), frames.flip(0), torch.zeros(8))
    results = []
    for bf16 in (False, True):
        torch.manual_seed(0)
        agent = DQNAgent(build_net(KIND_CONV, spec), DQNParams(lr=1e-3, gamma=0.9, bf16=bf16))
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            assert agent.online(frames).dtype == torch.float32  # the output layer stays fp32
        results.append(agent.update(batch))
    assert results[1]['loss'] == pytest.approx(results[0]['loss'], rel=0.05)
    assert results[1]['q_mean'] == pytest.approx(results[0]['q_mean'], abs=0.02)


def test_bf16_is_refused_for_the_pixel_net(tmp_path):
    from pick_place_rl.train.dqn import DQNPixelConfig
    with pytest.raises(ValueError, match='bf16 is implemented for the classic conv net only'):
        DQNTrainer(DQNPixelConfig(bf16=True, out_dir=str(tmp_path)))


def test_classic_trainer_with_aux_loss_and_monte_carlo_returns_resumes(tmp_path):
    """The classic task with the auxiliary head and Monte Carlo returns, its env in a worker
    process: every replayed transition carries the env's aux_target of its frame and a
    discount (terminal, so nothing bootstraps); the checkpoint resumes with both."""
    from pick_place_rl.sim.kuka_grasp_env import AUX_DIM
    from pick_place_rl.train.dqn import DQNConfig
    base = dict(out_dir=str(tmp_path), epochs=1, steps_per_epoch=40, learning_starts=20,
                batch_size=8, n_eval_episodes=1, n_objects=2, aux_weight=1.0, n_step=8,
                async_env=True, progress=False, tensorboard=False)
    trainer = DQNTrainer(DQNConfig(**base))
    metrics = trainer.train()
    assert metrics['history'][-1]['aux_loss'] > 0.0
    state = trainer.replay.state_dict()
    assert state['aux'].shape == (trainer.replay.size, AUX_DIM)
    assert trainer.replay.size >= 40 - 7 and np.all(state['dones'][state['rewards'] > 0] == 1)
    # the first transition of each episode starts at the workspace centre, full height left
    first = state['aux'][0]
    assert np.allclose(first[:2], 0.0) and first[4] == pytest.approx(1.0)
    resumed = DQNTrainer(DQNConfig(**{**base, 'epochs': 2, 'resume': True}))
    assert resumed.replay.size == trainer.replay.size
    np.testing.assert_array_equal(resumed.replay.aux[:3], trainer.replay.aux[:3])
