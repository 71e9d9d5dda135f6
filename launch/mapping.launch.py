"""Launch the ssr_ros mapper, optionally with a bag replay and RViz.

    ros2 launch ssr_ros mapping.launch.py                      # live camera (RealSense topic names)
    ros2 launch ssr_ros mapping.launch.py bag:=/path/to/bag    # replay a recording
    ros2 launch ssr_ros mapping.launch.py rviz:=false config:=my.yaml
    ros2 launch ssr_ros mapping.launch.py namespace:=robot1 \\
        color_topic:=/zed/zed_node/rgb/image_rect_color depth_topic:=/zed/zed_node/depth/depth_registered \\
        camera_info_topic:=/zed/zed_node/rgb/camera_info pose_source:=tf

The *_topic arguments remap the node's default input topics (those of a RealSense driver) to a
driver's own; see docs/bringup.md for RealSense, Azure Kinect, ZED and OAK-D.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

# The node's default input topics (ssr_ros.data.rosbag_writer.DEFAULT_TOPICS) and the launch
# argument that remaps each.
INPUT_TOPICS = {
    "color_topic": "/camera/color/image_raw",
    "depth_topic": "/camera/aligned_depth_to_color/image_raw",
    "camera_info_topic": "/camera/color/camera_info",
    "labels_topic": "/camera/semantic/labels",
    "pose_topic": "/camera/pose",
}


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("ssr_ros")
    config = LaunchConfiguration("config")
    bag = LaunchConfiguration("bag")
    use_sim_time = LaunchConfiguration("use_sim_time")
    namespace = LaunchConfiguration("namespace")
    topic_arguments = [DeclareLaunchArgument(name, default_value=topic, description=f"remap the input {topic}")
                       for name, topic in INPUT_TOPICS.items()]
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=PathJoinSubstitution([share, "config", "mapping.yaml"]),
                              description="parameter file of the mapper node"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the mapper (and RViz)"),
        *topic_arguments,
        DeclareLaunchArgument("map_frame", default_value="map", description="fixed frame of the map (map_frame)"),
        DeclareLaunchArgument("pose_source", default_value="auto",
                              description="'tf' (tf2: map_frame -> the images' frame_id), 'topic' (pose_topic), "
                              "'auto' (tf where tf2_ros is installed)"),
        DeclareLaunchArgument("pose_type", default_value="PoseStamped",
                              description="PoseStamped, PoseWithCovarianceStamped, TransformStamped or Odometry"),
        DeclareLaunchArgument("bag", default_value="", description="rosbag2 to replay (empty: live sensors)"),
        DeclareLaunchArgument("rate", default_value="1.0", description="bag playback rate"),
        DeclareLaunchArgument("use_sim_time", default_value=PythonExpression(["'", bag, "' != ''"]),
                              description="follow /clock (default: true when a bag is replayed)"),
        DeclareLaunchArgument("rviz", default_value="true", description="start RViz with the ssr_ros view"),
        Node(
            package="ssr_ros", executable="mapper", name="ssr_mapper", namespace=namespace, output="screen",
            parameters=[config, {"use_sim_time": use_sim_time, "map_frame": LaunchConfiguration("map_frame"),
                                 "pose_source": LaunchConfiguration("pose_source"),
                                 "pose_type": LaunchConfiguration("pose_type")}],
            remappings=[(topic, LaunchConfiguration(name)) for name, topic in INPUT_TOPICS.items()],
        ),
        ExecuteProcess(
            cmd=["ros2", "bag", "play", bag, "--clock", "--rate", LaunchConfiguration("rate")],
            output="screen", condition=IfCondition(PythonExpression(["'", bag, "' != ''"])),
        ),
        Node(
            package="rviz2", executable="rviz2", name="rviz2", namespace=namespace, output="log",
            arguments=["-d", PathJoinSubstitution([share, "rviz", "ssr_ros.rviz"])],
            parameters=[{"use_sim_time": use_sim_time}], condition=IfCondition(LaunchConfiguration("rviz")),
        ),
    ])
