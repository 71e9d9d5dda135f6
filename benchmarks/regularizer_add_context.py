"""Write regulariser weights that add the class context (``network.context_levels``) to trained
weights, with the context's parameters set, not trained: level ``k`` weighs ``decay^k`` (from 1)
and ``beta`` scales the re-ranking. Settings are chosen on the validation rooms 1000-1001
(``benchmarks/regularizer_select.py``): decay 0.5, beta 6 for ``models/regularizer_pd_context.pt``,
decay 0.15, beta 6, own class 0.25 for ``models/regularizer_pd_context_own.pt``.

    PYTHONPATH=. python benchmarks/regularizer_add_context.py models/regularizer_pd_small.pt \
        models/regularizer_pd_context_own.pt --levels 3 --decay 0.15 --beta 6 --own 0.25
"""

from __future__ import annotations

import argparse
import dataclasses

from ssr_ros.regularization.context import ClassContext
from ssr_ros.regularization.network import LearnedRegularizer
from ssr_ros.regularization.training import start_from
from ssr_ros.regularization.weights import load_regularizer, save_regularizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="trained weights without the class context")
    parser.add_argument("out", help="weights file to write")
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--decay", type=float, default=0.5, help="weight ratio of each level to the next finer one")
    parser.add_argument("--beta", type=float, default=6.0, help="strength of the re-ranking")
    parser.add_argument("--own", type=float, default=0.0,
                        help="share of the prior kept for a voxel's own fused class where it has class evidence")
    args = parser.parse_args()
    base = load_regularizer(args.base)
    if base.config.context_levels:
        raise SystemExit(f"'{args.base}' already has a class context of {base.config.context_levels} levels")
    model = LearnedRegularizer(base.num_labels, dataclasses.replace(base.config, context_levels=args.levels))
    start_from(model, args.base)
    model.context = ClassContext(args.levels, base.config.dims, beta=args.beta, decay=args.decay, own=args.own)
    contract = base.contract
    metadata = dict(base.metadata)
    metadata["class_context"] = (f"{args.levels} levels (decay {args.decay}, beta {args.beta}, own class {args.own}) added to {args.base} "
                                 "(set on the validation rooms, not trained)")
    save_regularizer(model, args.out, base.data_cost, contract["voxel_size"], contract["truncation"],
                     contract["class_names"], metadata=metadata)
    print(f"wrote {args.out}: {model.num_parameters()} parameters")


if __name__ == "__main__":
    main()
