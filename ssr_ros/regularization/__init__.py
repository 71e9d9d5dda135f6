"""Semantic regularisation of the fused map: a TV-L1 multi-label baseline and a learned
multi-scale primal-dual regulariser (after Cherabier et al., "Learning Priors for Semantic 3D
Reconstruction"), both run on dense chunks of the map."""
