"""Object-level refinement: instances in the map, a learned per-class shape prior, alignment.

Modules: ``instances`` (connected components of same-class surface voxels -> ``Instance``),
``shape_classes`` (classes with a prior and their canonical grids), ``observation`` (an
object's partial view as the prior sees it; simulated views for training), ``network``
(the class-conditioned 3D U-Net with a yaw head), ``training`` (``ssr train-objects``),
``weights`` (the weights file and its contract), ``alignment`` (yaw search and continuous
pose / scale refinement), ``refinement`` (the map stage: complete, align, write back),
``object_list`` (``ObjectRecord`` and its JSON file) and ``evaluation`` (per-object scores
against a generated room's exact objects).
"""
