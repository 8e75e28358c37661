"""A data-parallel fit of K steps on Ray Train workers, its trained weights saved (tests/test_data_parallel.py runs
it in a process of its own, once per worker count).

Usage: python tests/dp_probe.py ADDRESS|local WORKERS STEPS exchange|alone OUT.npz
"""

import sys

import numpy as np


def main(address: str, workers: int, steps: int, mode: str, out: str) -> None:
    from mobilekit.backend import keras
    from mobilekit.pipeline import parallel, stages
    from mobilekit.pipeline.config import BuildConfig
    from mobilekit.progress import console

    cfg = BuildConfig(arch="squeezenet1_1", workers=workers, address=None if address == "local" else address,
                      batch_size=64, limit_train=1024, limit_test=64, epochs=1, seed=0, max_accuracy_drop=None,
                      optimizer="adam",
                      # no dropout (its masks are drawn per worker) and no BatchNormalization (each worker normalises
                      # with its own batch's statistics): both differ from one process's by design
                      arch_kwargs={"dropout": 0.0, "batch_norm": False, "classifier_relu": False})
    parallel.start(cfg, console, exchange=mode == "exchange")
    try:
        data = stages.load_data(cfg, console)
        keras.utils.set_random_seed(cfg.seed)
        model = stages.create_model(cfg, data)
        initial = model.get_weights()
        record = parallel.fit(model, data.ds.x_train, data.ds.y_train, cfg, steps, cfg.lr, "probe", [], 0, None)
    finally:
        parallel.stop()
    np.savez(out, *model.get_weights(), **{f"init_{i}": w for i, w in enumerate(initial)},
             nodes=np.array(record["nodes"]),
             identical=np.array(record["replicas_identical"]))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
