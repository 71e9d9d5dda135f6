"""Write regulariser weights that add the class context (``network.context_levels``) to trained
weights, with the context's starting parameters (level weights halving from 1, beta 6), which
were chosen on the validation rooms 1000-1001 (``benchmarks/regularizer_select.py``).

    PYTHONPATH=. python benchmarks/regularizer_add_context.py models/regularizer_pd_small.pt \
        models/regularizer_pd_context.pt --levels 3
"""

from __future__ import annotations

import argparse
import dataclasses

from ssr_ros.regularization.network import LearnedRegularizer
from ssr_ros.regularization.training import start_from
from ssr_ros.regularization.weights import load_regularizer, save_regularizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="trained weights without the class context")
    parser.add_argument("out", help="weights file to write")
    parser.add_argument("--levels", type=int, default=3)
    args = parser.parse_args()
    base = load_regularizer(args.base)
    if base.config.context_levels:
        raise SystemExit(f"'{args.base}' already has a class context of {base.config.context_levels} levels")
    model = LearnedRegularizer(base.num_labels, dataclasses.replace(base.config, context_levels=args.levels))
    start_from(model, args.base)
    contract = base.contract
    metadata = dict(base.metadata)
    metadata["class_context"] = f"{args.levels} levels added to {args.base} (starting parameters, not trained)"
    save_regularizer(model, args.out, base.data_cost, contract["voxel_size"], contract["truncation"],
                     contract["class_names"], metadata=metadata)
    print(f"wrote {args.out}: {model.num_parameters()} parameters")


if __name__ == "__main__":
    main()
