"""The shipped DDPG+HER actors load through the policy node's loader and still succeed.

Each ``models/<name>/`` folder holds ``actor.pt`` and the model card ``metrics.json`` whose
success was measured on the shipped file; here a few of the same fixed-seed episodes are
replayed through :class:`GoalPolicy` and must succeed about as often as the card says.
"""
import json
from pathlib import Path

import pytest

from pick_place_rl.core.policy import GoalPolicy
from pick_place_rl.train.model_card import evaluate_actor

MODELS = Path(__file__).resolve().parents[1] / 'models'
ACTORS = sorted(p.parent.name for p in MODELS.glob('fetch_*/actor.pt'))


def test_reach_push_and_pick_and_place_actors_are_shipped():
    assert {'fetch_reach', 'fetch_push', 'fetch_pick_and_place'} <= set(ACTORS)


@pytest.mark.parametrize('name', ACTORS)
def test_shipped_actor_matches_its_card(name):
    card = json.loads((MODELS / name / 'metrics.json').read_text())
    policy = GoalPolicy.from_checkpoint(MODELS / name / 'actor.pt',
                                        {'env_id': card['env_id']})
    assert policy.act_dim == 4
    episodes = 20
    result = evaluate_actor(MODELS / name / 'actor.pt', card['env_id'], episodes,
                            card['eval']['first_seed'], n_envs=10)
    # 20 of the card's 100 episodes: allow sampling slack below the card's rate
    assert result['success_rate'] >= card['eval']['success_rate'] - 0.2, result
