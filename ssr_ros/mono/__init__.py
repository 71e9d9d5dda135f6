"""Monocular mode: depth, its confidence and semantics predicted from color alone.

Robots with a color camera and odometry but no depth sensor map with a small 2D network
(:mod:`ssr_ros.mono.network`) that predicts, per pixel, log depth with a Laplace scale (its
confidence) and class scores over the map's taxonomy. :mod:`ssr_ros.mono.predictor` turns a
color frame into a depth image, a per-pixel fusion weight and class probabilities for the
map; :mod:`ssr_ros.mono.keyframes` picks the frames worth predicting (rotation / translation
thresholds, as CDRNet and NeuralRecon do); :mod:`ssr_ros.mono.training` trains the network
(``ssr train-mono``) on generated rooms and real RGB-D folders.
"""
