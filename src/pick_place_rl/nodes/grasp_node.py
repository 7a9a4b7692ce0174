"""Grasp policy node: picks with the DQN grasp net from the camera, places at goals over topics.

The KUKA counterpart of the policy node (same executable slot in ``sim_robot``: the bring-up
graph runs this one for ``robot:=kuka``, under the node name ``policy_node``). It shares the
policy node's episode plumbing: goals on ``/pick_place/goal`` (here: where to put the object),
``/pick_place/status`` (plus ``stage`` and ``grasp``), the latched e-stop, ``~/cancel``,
``~/reload``, ``~/reset_estop`` and ``/diagnostics``. What differs lives in
``robot.grasp_runner``: the camera (RGB, depth, camera_info and the camera pose, one stamp)
becomes the grasp net's RGB + height image; the best grasp is executed by streaming joint
targets on the trajectory topic and finger targets on the gripper topic.

Bad input never stops the node: an image of the wrong size, encoding or with NaN depth is
rejected with the reason (counted as ``rejected_images``); stale joint states pause the
episode; the grasp is only chosen on a frame taken after the arm parked (none within
``capture_timeout``: the episode fails with the reason); missing or mismatched weights leave
the node ``inactive`` until ``~/reload``.
"""
from __future__ import annotations

from typing import Any

from geometry_msgs.msg import PoseStamped
import numpy as np
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image

from pick_place_rl.core.checkpoint import CheckpointError
from pick_place_rl.nodes import policy_msgs as pm
from pick_place_rl.nodes.params import spin_node
from pick_place_rl.nodes.policy_node import PolicyNode, resolve
from pick_place_rl.robot.fetch_observation import quat_to_matrix
from pick_place_rl.robot.grasp_config import build_grasp_runner, GraspNodeConfig
from pick_place_rl.robot.grasp_runner import CameraFrame, GraspRunner, GraspSample
from pick_place_rl.robot.safety import InputRejected

__all__ = ['GraspNode', 'GraspNodeConfig', 'load_grasp_net', 'main']


def load_grasp_net(path: str) -> Any:
    """The pixel-wise grasp net; CheckpointError names what is wrong."""
    from pick_place_rl.core.grasp_policy import GraspPolicy
    if not path:
        raise CheckpointError('no weights given (parameter "weights" is empty)')
    net = GraspPolicy(resolve(path))
    if net.spec['in_channels'] != 4:
        raise CheckpointError(f'{path}: grasp net takes {net.spec["in_channels"]} channels, '
                              'this node builds RGB + height (4)')
    return net


class GraspNode(PolicyNode):
    """Thin adapter between the ROS graph and a ``GraspRunner``."""

    CONFIG = GraspNodeConfig
    DIAGNOSTICS_NAME = 'policy_node: grasp'

    def _make_runner(self) -> GraspRunner:
        self._images: dict[str, Any] = {}
        self._frame: CameraFrame | None = None
        return build_grasp_runner(self.config, self.period, resolve(self.config.urdf))

    # ---- hooks ---------------------------------------------------------------------------
    def _make_inputs(self, qos: QoSProfile) -> None:
        self._counts['rejected_images'] = 0
        ns = self.config.camera_namespace.rstrip('/')
        self.create_subscription(Image, f'{ns}/image_raw', lambda m: self._on_image('rgb', m),
                                 qos)
        self.create_subscription(Image, f'{ns}/depth/image_raw',
                                 lambda m: self._on_image('depth', m), qos)
        self.create_subscription(CameraInfo, f'{ns}/camera_info',
                                 lambda m: self._on_image('info', m), qos)
        self.create_subscription(PoseStamped, f'{ns}/pose',
                                 lambda m: self._on_image('pose', m), qos)

    def _load(self, path: str) -> Any:
        net = load_grasp_net(path)
        self.runner.image_size = int(net.spec['image_size'])
        return net.grasp

    def _input_stamps(self) -> dict[str, float | None]:
        # The camera is not watched here: the runner only uses a frame stamped after the arm
        # parked, and fails the episode (with the reason) when none comes within its timeout.
        return {'joint_states': None if self._js is None else self._js[0]}

    def _synced(self) -> bool:
        return self._js is not None

    def _episode_started(self) -> None:
        pass

    def _runner_step(self) -> Any:
        js_stamp, arm_q, _, finger_q, _ = self._js
        return self.runner.step(GraspSample(js_stamp, arm_q, finger_q), self._frame)

    def _publish_markers(self) -> None:
        grip = self.runner.kin.fk(self._js[1])
        point = self.runner.status.grasp.get('point') if self.runner.status.grasp else None
        self._marker_pub.publish(pm.markers(
            self.runner.status.goal or None, point, grip, self.config.world_frame,
            self.get_clock().now().to_msg(), 0.03))

    # ---- camera --------------------------------------------------------------------------
    def _on_image(self, kind: str, msg: Any) -> None:
        """Collect rgb, depth, info and pose; a complete set with one stamp is a frame."""
        stamp = pm.seconds(msg.header.stamp)
        self._images[kind] = (stamp, msg)
        if len(self._images) < 4 or any(s != stamp for s, _ in self._images.values()):
            return
        try:
            self._frame = self._to_frame(stamp)
        except (InputRejected, ValueError) as exc:
            self._reject('rejected_images', f'camera frame rejected: {exc}')
        finally:
            self._images.clear()

    def _to_frame(self, stamp: float) -> CameraFrame:
        rgb_msg, depth_msg = self._images['rgb'][1], self._images['depth'][1]
        info, pose = self._images['info'][1], self._images['pose'][1]
        self._check_frame(pose.header.frame_id, 'camera pose')
        h, w = rgb_msg.height, rgb_msg.width
        if rgb_msg.encoding != 'rgb8' or len(rgb_msg.data) != h * w * 3:
            raise InputRejected(f'rgb image must be rgb8 {w}x{h}, got {rgb_msg.encoding} with '
                                f'{len(rgb_msg.data)} bytes')
        if depth_msg.encoding != '32FC1' or (depth_msg.height, depth_msg.width) != (h, w) or \
                len(depth_msg.data) != h * w * 4:
            raise InputRejected(f'depth image must be 32FC1 {w}x{h}, got {depth_msg.encoding} '
                                f'{depth_msg.width}x{depth_msg.height}')
        k = np.asarray(info.k, dtype=float)
        if k.shape != (9,) or not np.all(np.isfinite(k)) or k[0] <= 0 or k[4] <= 0:
            raise InputRejected('camera_info K is not a valid pinhole matrix')
        position, quat = pm.pose_arrays(pose)
        rgb = np.frombuffer(bytes(rgb_msg.data), np.uint8).reshape(h, w, 3)
        dtype = '>f4' if depth_msg.is_bigendian else '<f4'
        depth = np.frombuffer(bytes(depth_msg.data), dtype).reshape(h, w).astype(np.float32)
        frame = CameraFrame(stamp, rgb, depth, k[0], k[4], k[2], k[5], position,
                            quat_to_matrix(quat))
        self.runner.net_input(frame)  # size and depth checks now, not mid-episode
        return frame


def main(args: list[str] | None = None) -> int:
    return spin_node(GraspNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
