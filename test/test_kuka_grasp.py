"""KUKA grasping scene and envs on real PyBullet: split, determinism, reward on lift, errors."""
import numpy as np
import pybullet as pb
import pytest

from pick_place_rl.sim.kuka_grasp_env import KukaDiverseGraspEnv, KukaPixelGraspEnv
from pick_place_rl.sim.kuka_scene import (
    ARM_JOINT_NAMES,
    connect,
    FINGER_JOINT_NAMES,
    KukaScene,
    object_indices,
    object_urdf,
    UnknownObjectSetError,
)
from pick_place_rl.sim.registry import check_env_id


def test_object_split_is_the_disjoint_90_10_split():
    train, test = set(object_indices('train')), set(object_indices('test'))
    assert len(train) == 900 and len(test) == 100
    assert not train & test
    assert train | test == set(object_indices('all')) == set(range(1000))
    assert all(i % 10 == 0 for i in test)


def test_unknown_object_set_is_a_clear_error():
    with pytest.raises(UnknownObjectSetError, match="unknown object set 'val'.*train"):
        object_indices('val')
    with pytest.raises(UnknownObjectSetError, match='outside'):
        object_urdf(1000)
    with pytest.raises(UnknownObjectSetError, match='unknown object set'):
        KukaPixelGraspEnv(split='validation')


@pytest.fixture(scope='module')
def scene():
    client = connect()
    yield KukaScene(client)
    pb.disconnect(client)


def test_scene_loads_objects_of_the_split_and_reports_state(scene):
    ids = scene.load_objects(3, 'test', np.random.default_rng(0))
    assert len(ids) == 3 and all(i % 10 == 0 for i in ids)
    poses = scene.object_poses()
    assert poses.shape == (3, 7)
    # settled in the tray, inside the workspace square
    assert np.all(np.abs(poses[:, 2] - scene.tray_floor_z) < 0.15)
    assert np.all(poses[:, 0] > 0.3) and np.all(poses[:, 0] < 0.8)
    assert scene.arm_joint_names == ARM_JOINT_NAMES and len(ARM_JOINT_NAMES) == 7
    assert scene.finger_joint_names == FINGER_JOINT_NAMES
    lower, upper = scene.arm_limits()
    q = scene.arm_positions()
    assert np.all(lower < q) and np.all(q < upper)
    pos, quat = scene.ee_pose()
    assert pos[2] > 0.3 and abs(np.linalg.norm(quat) - 1) < 1e-6
    # the same seed picks the same objects
    assert scene.load_objects(3, 'test', np.random.default_rng(0)) == ids


def test_ik_reaches_a_target_in_the_workspace(scene):
    scene.clear_objects()
    target = np.array([0.6, 0.05, 0.25])
    scene.reset_robot(scene.ik(target))
    assert np.linalg.norm(scene.ee_pose()[0] - target) < 0.01


def test_env_ids_are_registered():
    for env_id in ('KukaDiverseGrasp-v0', 'KukaPixelGrasp-v0', 'JointReacher-v0'):
        check_env_id(env_id)


def _rollout(env, seed, actions):
    obs, info = env.reset(seed=seed)
    frames, rewards = [obs], []
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        frames.append(obs)
        rewards.append(r)
        if term or trunc:
            break
    return info['objects'], frames, rewards, env.scene.object_poses()


def test_diverse_env_same_seed_same_episode():
    actions = [1, 4, 6, 0, 2, 3, 5, 0]
    env_a, env_b = KukaDiverseGraspEnv(n_objects=3), KukaDiverseGraspEnv(n_objects=3)
    try:
        ids_a, frames_a, rew_a, poses_a = _rollout(env_a, 7, actions)
        ids_b, frames_b, rew_b, poses_b = _rollout(env_b, 7, actions)
        assert ids_a == ids_b and rew_a == rew_b
        assert all(np.array_equal(a, b) for a, b in zip(frames_a, frames_b))
        np.testing.assert_array_equal(poses_a, poses_b)
        assert frames_a[0].shape == (48, 48, 3) and frames_a[0].dtype == np.uint8
        # one grasp attempt ends the episode within max_steps
        assert len(rew_a) <= env_a.config.max_steps
        ids_c, *_ = _rollout(env_a, 8, [])
        assert ids_c != ids_a
    finally:
        env_a.close()
        env_b.close()


def test_diverse_env_rewards_a_lift_and_not_a_miss():
    env = KukaDiverseGraspEnv(n_objects=1, split='test')
    try:
        for place, expect in (((0.55, 0.0), 1.0), ((0.42, 0.13), 0.0)):
            env.reset(seed=3)
            s = env.scene
            body = s.objects[0]
            pos, orn = pb.getBasePositionAndOrientation(body, physicsClientId=s.p.id)
            # under the gripper's start (success) or in a far corner (miss), then settle
            pb.resetBasePositionAndOrientation(body, [*place, pos[2]], orn,
                                               physicsClientId=s.p.id)
            s.step(50)
            done = False
            while not done:
                _, reward, term, trunc, info = env.step(0)
                done = term or trunc
            assert term and info['attempted']
            assert reward == expect and info['is_success'] == bool(expect)
            if expect:
                assert s.object_poses()[0, 2] > s.config.lift_height
    finally:
        env.close()


def test_pixel_env_grasp_on_object_lifts_it_and_empty_tray_does_not():
    env = KukaPixelGraspEnv(n_objects=1, split='test')
    try:
        obs, _ = env.reset(seed=3)
        size = env.config.image_size
        assert obs.shape == (4, size, size) and obs.dtype == np.float32
        assert env.action_space.n == env.config.n_yaw * size * size
        # an empty corner of the image: nothing there to lift
        miss = (0 * size + 0) * size + 0
        obs, reward, term, trunc, info = env.step(miss)
        assert reward == 0.0 and not info['is_success'] and info['n_left'] == 1
        # the pixel over the object's centre (seed 3, yaw bin 1: a known good grasp)
        pose = env.scene.object_poses()[0]
        rows, cols = np.mgrid[0:size, 0:size]
        pts = env.scene.unproject(env.camera, size, size, cols.ravel(), rows.ravel(),
                                  env.depth.ravel())
        k = int(np.argmin(np.linalg.norm(pts[:, :2] - pose[:2], axis=1)))
        assert obs[3].ravel()[k] > 0.01  # the height channel sees the object there
        obs, reward, term, trunc, info = env.step((1 * size * size) + k)
        assert reward == 1.0 and info['is_success']
        assert term and info['n_left'] == 0  # lifted objects leave the tray
        assert env.decode((1 * size * size) + k) == (1, *divmod(k, size))
    finally:
        env.close()


def test_pixel_env_object_pushed_out_of_view_leaves_the_episode():
    """An object the camera cannot see cannot be grasped: it leaves the episode, which ends."""
    env = KukaPixelGraspEnv(n_objects=2, split='test')
    try:
        env.reset(seed=3)
        assert len(env.in_view()) == 2
        s = env.scene
        pose = s.object_poses()[0]
        centre_y = (s.config.workspace_low[1] + s.config.workspace_high[1]) / 2
        outside = [pose[0], centre_y + env.config.half_extent + 0.05, pose[2]]
        s.p.resetBasePositionAndOrientation(s.objects[0], outside, list(pose[3:]))
        assert len(s.in_tray()) == 2 and env.in_view() == [1]
        _, reward, term, _, info = env.step(0)  # a corner of the image: a miss
        assert reward == 0.0 and info['n_left'] == 1 and not term
        s.p.resetBasePositionAndOrientation(s.objects[0], outside, list(pose[3:]))
        _, reward, term, _, info = env.step(0)
        assert term and info['n_left'] == 0
    finally:
        env.close()


def test_invalid_action_is_a_clear_error():
    env = KukaPixelGraspEnv(n_objects=1)
    try:
        env.reset(seed=0)
        with pytest.raises(ValueError, match='outside Discrete'):
            env.step(env.action_space.n)
    finally:
        env.close()


def test_pixel_env_same_seed_same_episode():
    env_a, env_b = KukaPixelGraspEnv(n_objects=3), KukaPixelGraspEnv(n_objects=3)
    try:
        actions = [1234, 3001]
        ids_a, frames_a, rew_a, poses_a = _rollout(env_a, 11, actions)
        ids_b, frames_b, rew_b, poses_b = _rollout(env_b, 11, actions)
        assert ids_a == ids_b and rew_a == rew_b
        assert all(np.array_equal(a, b) for a, b in zip(frames_a, frames_b))
        np.testing.assert_array_equal(poses_a, poses_b)
    finally:
        env_a.close()
        env_b.close()


def test_diverse_env_aux_target_tracks_the_gripper_and_the_nearest_object():
    """The auxiliary target (privileged, for training only) says where the gripper's target is,
    the offset to the nearest object in the tray, the height left to descend and the yaw."""
    from pick_place_rl.sim.kuka_grasp_env import AUX_DIM, AUX_SCALE
    env = KukaDiverseGraspEnv(n_objects=1, split='test')
    try:
        _, info = env.reset(seed=3)
        first = info['aux_target']
        assert first.shape == (AUX_DIM,) and first.dtype == np.float32
        assert np.allclose(first[:2], 0.0) and first[4] == pytest.approx(1.0)
        obj = env.scene.object_poses()[0, :2]
        assert np.allclose(first[2:4] * AUX_SCALE, obj - env.target[:2], atol=1e-6)
        _, _, _, _, info = env.step(2)  # +x
        moved = info['aux_target']
        assert moved[0] == pytest.approx(env.config.xy_step / AUX_SCALE) and moved[1] == 0.0
        assert moved[4] < first[4]
        _, _, _, _, info = env.step(6)  # +yaw
        assert info['aux_target'][5] == pytest.approx(env.config.yaw_step / (np.pi / 2))
    finally:
        env.close()


def test_diverse_env_aux_object_map_marks_the_object_one_move_away():
    from pick_place_rl.sim.kuka_grasp_env import AUX_GRID
    env = KukaDiverseGraspEnv(n_objects=1, split='test')
    try:
        env.reset(seed=3)
        s = env.scene
        body = s.objects[0]
        pos, orn = pb.getBasePositionAndOrientation(body, physicsClientId=s.p.id)
        # one move (+x) and two (-y) from the gripper's start
        place = env.target[:2] + env.config.xy_step * np.array([1.0, -2.0])
        pb.resetBasePositionAndOrientation(body, [*place, pos[2]], orn, physicsClientId=s.p.id)
        s.step(50)
        grid = env.aux_target()[6:6 + AUX_GRID ** 2].reshape(AUX_GRID, AUX_GRID)
        assert np.unravel_index(grid.argmax(), grid.shape) == (4, 1)
        assert grid.max() > 0.8 and grid[3, 3] < 0.01
        # the masks: objects and robot at a quarter of the frame's size, from the same render
        aux = env.aux_target()
        masks = aux[-2 * 144:].reshape(2, 12, 12)
        assert 0.0 < masks[0].sum() < 20 and masks[1].sum() > masks[0].sum()
        assert np.all((masks >= 0.0) & (masks <= 1.0))
        # the gripper point: where the gripper's target, dropped to the tray, is in the frame;
        # a move along +x moves it in the frame
        point = aux[6 + AUX_GRID ** 2:6 + AUX_GRID ** 2 + 2]
        assert np.all(np.abs(point) < 1.0)
        _, _, _, _, info = env.step(2)
        assert np.linalg.norm(info['aux_target'][55:57] - point) > 0.05
    finally:
        env.close()
