"""Three data-parallel fits on Ray Train workers in one session, their trained weights saved
(tests/test_data_parallel.py runs it in a process of its own, once per worker count): a plain fit (Adam) of K steps,
then a distillation fit from a teacher (SGD: Adam's update hardly moves when a wrong loss scale multiplies every
gradient, SGD's moves with it, so the distiller's per-replica loss scaling is checked), then a plain fit of
EAGER_STEPS SGD steps run eagerly (a build's few-step fits are; SGD again, so a gradient summed instead of averaged
over the replicas shows).

Usage: python tests/dp_probe.py ADDRESS|local WORKERS STEPS exchange|alone OUT.npz
"""

import sys
from dataclasses import replace

import numpy as np

EAGER_STEPS = 6  # the third fit, run eagerly as a build's fits of this few float steps are (training.EAGER_MAX_STEPS)


def main(address: str, workers: int, steps: int, mode: str, out: str) -> None:
    from mobilekit.backend import keras
    from mobilekit.optimize.distill import Distiller
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
    saved = {}
    try:
        data = stages.load_data(cfg, console)
        x, y = data.ds.x_train, data.ds.y_train
        keras.utils.set_random_seed(cfg.seed)
        model = stages.create_model(cfg, data)
        initial = model.get_weights()
        record = parallel.fit(model, x, y, cfg, steps, cfg.lr, "probe", [], 0, None)
        saved.update(**_arrays("init", initial), **_arrays("plain", model.get_weights()),
                     nodes=np.array(record["nodes"]), identical=np.array(record["replicas_identical"]))
        keras.utils.set_random_seed(cfg.seed + 1)
        teacher, student = stages.create_model(cfg, data), stages.create_model(cfg, data)
        alpha, temperature = 0.5, 4.0
        wrap = parallel.distill_wrap(student, teacher, alpha, temperature)
        saved.update(_arrays("dinit", student.get_weights()))
        record = parallel.fit(Distiller(student, teacher, alpha, temperature), x, y, replace(cfg, optimizer="sgd"),
                              steps, 0.05, "probe distilled", [], 0, wrap)
        saved.update(**_arrays("distill", student.get_weights()),
                     distilled_identical=np.array(record["replicas_identical"]))
        keras.utils.set_random_seed(cfg.seed + 2)
        model = stages.create_model(cfg, data)
        saved.update(_arrays("einit", model.get_weights()))
        record = parallel.fit(model, x, y, replace(cfg, optimizer="sgd"), EAGER_STEPS, 0.05, "probe eager", [], 0, None,
                              eager=True)
        saved.update(**_arrays("eager", model.get_weights()), eagerly_identical=np.array(record["replicas_identical"]))
    finally:
        parallel.stop()
    np.savez(out, **saved)


def _arrays(prefix: str, weights: list) -> dict:
    return {f"{prefix}_{i}": w for i, w in enumerate(weights)}


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
