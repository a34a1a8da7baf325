"""``mlip eval MODEL [DATA.h5 ...] [--group G] [--json OUT] [--plot DIR]``: error table.

MODEL is a model file (``model.pt``) or a run directory; a run directory without DATA is
evaluated on its own data and train/valid/test split (``config.yaml``, ``split.json``).
Errors: energy meV/atom and meV, forces meV/A, full Hessians meV/A^2, stress meV/A^3.
A committee (``mlip train --committee K``) also gets its calibration: the Spearman
correlation between its force std and the force error of its mean per conformer, and
the error of the mean against each member's (:mod:`mlip.train.calibration`).
"""

from __future__ import annotations

import argparse
import os


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval",
        help="errors (MAE/RMSE) and parity plots of a model on labelled data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="model file (model.pt) or run directory")
    parser.add_argument("data", nargs="*", help="mlip-HDF5 file(s) (default: the run's data)")
    parser.add_argument("--group", nargs="+", default=None, help="group(s) (default: all)")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the metrics as JSON")
    parser.add_argument("--plot", default=None, metavar="DIR", help="write parity plots (PNG)")
    parser.add_argument("--batch-size", type=int, default=16, help="conformers per batch")
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda', ... (default cpu)")
    parser.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    parser.add_argument("--no-hessian", action="store_true", help="skip the full Hessians")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from mlip.committee import is_committee
    from mlip.data.hdf5 import H5Dataset
    from mlip.model import load_model
    from mlip.train import evaluate
    from mlip.train.calibration import committee_calibration, format_calibration

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    is_run = os.path.isdir(args.model)
    model_path = os.path.join(args.model, "model.pt") if is_run else args.model
    dtype = getattr(torch, args.dtype)
    model = load_model(model_path, args.device, dtype)
    if is_run:
        dataset, split = evaluate.run_dataset(args.model, args.data or None, args.group)
    elif args.data:
        dataset, split = H5Dataset(args.data, args.group), None
    else:
        raise ValueError("give DATA (mlip-HDF5 file) to evaluate a model file on")
    results = evaluate.evaluate_splits(
        model,
        dataset,
        split,
        args.batch_size,
        args.device,
        getattr(torch, args.dtype),
        not args.no_hessian,
    )
    print(evaluate.report(results))
    extra = None
    if is_committee(model):  # calibration of the spread against the error of the mean
        parts = split if split is not None else {"all": np.arange(len(dataset))}
        calibration = {
            name: committee_calibration(
                model, dataset.iterate(idx), args.batch_size, args.device, dtype
            )
            for name, idx in parts.items()
            if len(idx)
        }
        print(format_calibration(calibration))
        extra = {"calibration": calibration}
    if args.json:
        meta = {
            "model": model_path,
            "data": dataset.paths,
            "groups": [g.name for g in dataset.groups],
        }
        evaluate.write_json(results, args.json, meta, extra=extra)
    if args.plot:
        for path in evaluate.parity_plots(results, args.plot):
            print(f"wrote {path}")
    return 0
