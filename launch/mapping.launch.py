"""Launch the ssr_ros mapper, optionally with a bag replay and RViz.

    ros2 launch ssr_ros mapping.launch.py                      # live camera
    ros2 launch ssr_ros mapping.launch.py bag:=/path/to/bag    # replay a recording
    ros2 launch ssr_ros mapping.launch.py rviz:=false config:=my.yaml
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("ssr_ros")
    config = LaunchConfiguration("config")
    bag = LaunchConfiguration("bag")
    use_sim_time = LaunchConfiguration("use_sim_time")
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=PathJoinSubstitution([share, "config", "mapping.yaml"]),
                              description="parameter file of the mapper node"),
        DeclareLaunchArgument("bag", default_value="", description="rosbag2 to replay (empty: live sensors)"),
        DeclareLaunchArgument("rate", default_value="1.0", description="bag playback rate"),
        DeclareLaunchArgument("use_sim_time", default_value=PythonExpression(["'", bag, "' != ''"]),
                              description="follow /clock (default: true when a bag is replayed)"),
        DeclareLaunchArgument("rviz", default_value="true", description="start RViz with the ssr_ros view"),
        Node(
            package="ssr_ros", executable="mapper", name="ssr_mapper", output="screen",
            parameters=[config, {"use_sim_time": use_sim_time}],
        ),
        ExecuteProcess(
            cmd=["ros2", "bag", "play", bag, "--clock", "--rate", LaunchConfiguration("rate")],
            output="screen", condition=IfCondition(PythonExpression(["'", bag, "' != ''"])),
        ),
        Node(
            package="rviz2", executable="rviz2", name="rviz2", output="log",
            arguments=["-d", PathJoinSubstitution([share, "rviz", "ssr_ros.rviz"])],
            parameters=[{"use_sim_time": use_sim_time}], condition=IfCondition(LaunchConfiguration("rviz")),
        ),
    ])
