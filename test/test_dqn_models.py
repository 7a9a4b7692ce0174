"""The shipped DQN grasp nets load with the serving wrapper and act on their env's images."""
from pathlib import Path

import numpy as np
import pytest

from pick_place_rl.core.checkpoint import CheckpointError
from pick_place_rl.core.dqn_nets import KIND_CONV, KIND_QMAP
from pick_place_rl.core.grasp_policy import GraspPolicy
from pick_place_rl.sim.kuka_grasp_env import KukaDiverseGraspEnv, KukaPixelGraspEnv

MODELS = Path(__file__).resolve().parents[1] / 'models'
SHIPPED = [('dqn_pixel', KIND_QMAP, KukaPixelGraspEnv), ('dqn_grasp', KIND_CONV,
                                                          KukaDiverseGraspEnv)]


@pytest.mark.parametrize('name,kind,env_cls', SHIPPED)
def test_shipped_grasp_net_serves_its_env(name, kind, env_cls):
    folder = MODELS / name
    for file in ('qnet.pt', 'README.md', 'metrics.json', 'curve.png'):
        assert (folder / file).is_file(), f'{folder / file} missing'
    policy = GraspPolicy(folder / 'qnet.pt', kind=kind)
    other = KIND_CONV if kind == KIND_QMAP else KIND_QMAP
    with pytest.raises(CheckpointError):
        GraspPolicy(folder / 'qnet.pt', kind=other)
    env = env_cls(split='test', n_objects=2)
    try:
        obs, _ = env.reset(seed=0)
        action = policy.act(obs)
        assert env.action_space.contains(action)
        if kind == KIND_QMAP:
            grasp = policy.grasp(obs)
            assert grasp.action == action and np.isfinite(grasp.q)
        _, reward, *_ = env.step(action)
        assert reward in (0.0, 1.0)
    finally:
        env.close()
