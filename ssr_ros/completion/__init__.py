"""Scene completion: the SSR 3D U-Net, the differentiable renderer, training and inference."""
