"""Convex multi-label energies over a voxel (or pixel) grid and their primal-dual solvers."""
