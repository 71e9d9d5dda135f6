"""The semantic TSDF map: block-sparse voxels with TSDF, weight, color and class evidence."""
