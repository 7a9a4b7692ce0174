"""Adapter from :mod:`pick_place_rl.bringup.graph` to ``launch`` / ``launch_ros`` actions.

Every ``launch/<graph>.launch.py`` is ``return generate('<graph>')``: the arguments are declared
with their descriptions and choices, and the nodes come from :func:`graph.plan` once the
argument values are known (an ``OpaqueFunction``), so ``ros2 launch`` starts exactly what
``pick-place-rl launch`` starts. ``launch`` is imported only inside :func:`generate`: the
translation itself (:func:`node_kwargs`) is plain data and testable without a ROS distro.
"""
from __future__ import annotations

from typing import Any

from pick_place_rl.bringup.graph import get_graph, PACKAGE, plan, PlannedNode, share_dir


def node_kwargs(node: PlannedNode) -> dict[str, Any]:
    """Keyword arguments of ``launch_ros.actions.Node`` for a planned node."""
    parameters: list[Any] = list(node.params_files)
    if node.parameters:
        parameters.append(dict(node.parameters))
    return {
        'package': PACKAGE,
        'executable': node.executable,
        'name': node.name,
        'namespace': node.namespace or None,
        'parameters': parameters,
        'remappings': list(node.remaps),
        'respawn': node.respawn,
        'respawn_delay': node.respawn_delay,
        'output': 'screen',
        'emulate_tty': True,
    }


def generate(graph_name: str) -> Any:
    """The ``LaunchDescription`` of ``graph_name`` (needs a ROS 2 install's ``launch``)."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    graph = get_graph(graph_name)

    def nodes(context: Any) -> list[Any]:
        given = {a.name: LaunchConfiguration(a.name).perform(context) for a in graph.arguments}
        actions = []
        for node in plan(graph_name, given, share_dir(prefer_installed=True)):
            on_exit = None
            if node.required and not node.respawn:
                on_exit = Shutdown(reason=f'{node.name} is required and exited')
            actions.append(Node(**node_kwargs(node), on_exit=on_exit))
        return actions

    declared = [DeclareLaunchArgument(a.name, default_value=a.default,
                                      description=a.description,
                                      choices=list(a.choices) or None)
                for a in graph.arguments]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
