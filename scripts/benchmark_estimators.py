"""PureNetClassifier against scikit-learn's MLPClassifier: fit time and test accuracy with
equal settings, mean over seeds.

Equal settings: the same standardised data and split, one hidden layer of 100 ReLU units
(MLPClassifier's default), Adam at 1e-3 with betas (0.9, 0.999) and epsilon 1e-8,
batch_size "auto" (200), alpha 1e-4 (the same penalty: both add alpha / (2 * batch) *
sum(W**2) to a batch's loss), the same number of epochs with no early stop (MLPClassifier's
n_iter_no_change set past max_iter), one BLAS thread each (threadpoolctl), and the same
float dtype (MLPClassifier computes in the dtype of X, so float32 runs pass float32 X).
Both initialise weights Glorot-uniform (MLPClassifier draws its biases from the same range,
purenet starts them at 0); what differs beyond that is each library's random streams. Each seed makes its own data split (and, for make_classification,
its own data) and seeds both estimators; the two alternate which fits first.

Datasets: load_digits (1797 x 64, 10 classes, 100 epochs) and
make_classification(n_samples=20000, n_features=100, n_informative=20, n_redundant=10,
n_classes=4) (25 epochs); 25 % held out for the test accuracy.

    python scripts/benchmark_estimators.py [--seeds 3] [--dtypes float32,float64]
                                           [--datasets digits,classification] [--json PATH]
                                           [--defaults]

``--defaults`` instead fits both with their default parameters (max_iter=3000, so that
their stopping rule ends the fit) on iris, digits and breast_cancer, and reports the epochs
each trained, the ratio, and the test accuracies.

(also ``python scripts/benchmark.py --only sklearn``, with the same options after it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from typing import Callable, NamedTuple



class Dataset(NamedTuple):
    make: Callable[[int], tuple]   # seed -> (X, y)
    epochs: int


def _digits(seed: int) -> tuple:
    from sklearn.datasets import load_digits
    return load_digits(return_X_y=True)


def _classification(seed: int) -> tuple:
    from sklearn.datasets import make_classification
    return make_classification(n_samples=20000, n_features=100, n_informative=20,
                               n_redundant=10, n_classes=4, random_state=seed)


DATASETS = {"digits": Dataset(_digits, 100), "classification": Dataset(_classification, 25)}
SHARED = dict(hidden_layer_sizes=(100,), activation="relu", learning_rate_init=1e-3,
              beta_1=0.9, beta_2=0.999, epsilon=1e-8, batch_size="auto", alpha=1e-4,
              shuffle=True)


def estimators(epochs: int, seed: int, dtype: str) -> dict:
    from sklearn.neural_network import MLPClassifier
    from purenet.sklearn import PureNetClassifier

    return {
        "purenet": PureNetClassifier(**SHARED, solver="adam", max_iter=epochs,
                                     n_iter_no_change=None, random_state=seed, dtype=dtype,
                                     threads=1),
        "sklearn": MLPClassifier(**SHARED, solver="adam", max_iter=epochs, tol=0.0,
                                 n_iter_no_change=epochs + 1, random_state=seed),
    }


def split(dataset: Dataset, seed: int, dtype: str) -> tuple:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = dataset.make(seed)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25,
                                                        random_state=seed, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return (scaler.transform(X_train).astype(dtype), scaler.transform(X_test).astype(dtype),
            y_train, y_test)


def run(dataset: Dataset, seed: int, dtype: str) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    X_train, X_test, y_train, y_test = split(dataset, seed, dtype)
    contenders = list(estimators(dataset.epochs, seed, dtype).items())
    if seed % 2:
        contenders.reverse()
    results = {}
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)   # max_iter is the point
        for name, estimator in contenders:
            wall, cpu = time.perf_counter(), time.process_time()
            estimator.fit(X_train, y_train)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            results[name] = {"wall_s": wall, "cpu_s": cpu, "epochs": estimator.n_iter_,
                             "test_accuracy": float(estimator.score(X_test, y_test))}
    return results


def summarise(runs: list[dict]) -> dict:
    out = {}
    for name in runs[0]:
        out[name] = {key: statistics.mean(r[name][key] for r in runs)
                     for key in ("wall_s", "cpu_s", "test_accuracy")}
    out["speedup_wall"] = out["sklearn"]["wall_s"] / out["purenet"]["wall_s"]
    out["speedup_cpu"] = out["sklearn"]["cpu_s"] / out["purenet"]["cpu_s"]
    out["accuracy_difference"] = (out["purenet"]["test_accuracy"]
                                  - out["sklearn"]["test_accuracy"])
    return out


DEFAULT_RUNS = ("iris", "digits", "breast_cancer")


def defaults(seeds: int) -> dict:
    """Epochs and test accuracy of both estimators with default parameters."""
    import sklearn.datasets
    from sklearn.neural_network import MLPClassifier
    from purenet.sklearn import PureNetClassifier

    report = {}
    print(f"default parameters, max_iter=3000, mean over {seeds} seeds")
    print(f"{'dataset':<15}{'purenet ep':>11}{'sklearn ep':>11}{'ratio':>7}"
          f"{'purenet acc':>13}{'sklearn acc':>13}{'purenet s':>11}{'sklearn s':>11}")
    for name in DEFAULT_RUNS:
        load = getattr(sklearn.datasets, f"load_{name}")
        runs = []
        for seed in range(seeds):
            X_train, X_test, y_train, y_test = split(Dataset(lambda _: load(return_X_y=True),
                                                             0), seed, "float64")
            row = {}
            for label, cls in (("purenet", PureNetClassifier), ("sklearn", MLPClassifier)):
                start = time.process_time()
                model = cls(random_state=seed, max_iter=3000).fit(X_train, y_train)
                row[label] = {"epochs": model.n_iter_, "cpu_s": time.process_time() - start,
                              "test_accuracy": float(model.score(X_test, y_test))}
            runs.append(row)
        mean = {label: {key: statistics.mean(r[label][key] for r in runs)
                        for key in ("epochs", "cpu_s", "test_accuracy")}
                for label in ("purenet", "sklearn")}
        mean["epoch_ratio"] = mean["purenet"]["epochs"] / mean["sklearn"]["epochs"]
        report[name] = {**mean, "runs": runs}
        print(f"{name:<15}{mean['purenet']['epochs']:>11.1f}{mean['sklearn']['epochs']:>11.1f}"
              f"{mean['epoch_ratio']:>7.2f}{mean['purenet']['test_accuracy']:>13.4f}"
              f"{mean['sklearn']['test_accuracy']:>13.4f}{mean['purenet']['cpu_s']:>11.2f}"
              f"{mean['sklearn']['cpu_s']:>11.2f}")
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--defaults", action="store_true",
                        help="epochs to the stopping rule with default parameters")
    args = parser.parse_args(argv)
    if args.defaults:
        report = defaults(args.seeds)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
        return report
    unknown = set(args.datasets.split(",")) - set(DATASETS)
    if unknown or args.seeds < 1:
        parser.error(f"unknown datasets {sorted(unknown)}; expected some of {list(DATASETS)}"
                     if unknown else "--seeds must be >= 1")
    report = {}
    print(f"PureNetClassifier vs MLPClassifier: mean over {args.seeds} seeds, 1 thread each")
    print("wall and CPU seconds of fit (CPU time is the steadier one on a shared machine); "
          "speedup = sklearn / purenet")
    print(f"{'dataset':<15}{'dtype':<9}{'epochs':>7}{'purenet s':>11}{'sklearn s':>11}"
          f"{'speedup':>9}{'purenet cpu':>13}{'sklearn cpu':>13}{'speedup':>9}"
          f"{'purenet acc':>13}{'sklearn acc':>13}")
    for name in args.datasets.split(","):
        for dtype in args.dtypes.split(","):
            runs = [run(DATASETS[name], seed, dtype) for seed in range(args.seeds)]
            s = report[f"{name}/{dtype}"] = summarise(runs)
            report[f"{name}/{dtype}"]["runs"] = runs
            print(f"{name:<15}{dtype:<9}{DATASETS[name].epochs:>7}"
                  f"{s['purenet']['wall_s']:>11.2f}{s['sklearn']['wall_s']:>11.2f}"
                  f"{s['speedup_wall']:>8.2f}x{s['purenet']['cpu_s']:>13.2f}"
                  f"{s['sklearn']['cpu_s']:>13.2f}{s['speedup_cpu']:>8.2f}x"
                  f"{s['purenet']['test_accuracy']:>13.4f}"
                  f"{s['sklearn']['test_accuracy']:>13.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
