"""The `mobilekit build` pipeline, driven by a compression recipe (mobilekit.recipes).

float training -> pruning (magnitude to ``sparsity``, or m-by-n) -> strip -> [fold BN,
clustering + fine-tune] -> QAT (PQAT / CQAT / PCQAT, or post-training quantization) ->
full-integer int8 conversion at batch 1 -> flatbuffer checks (what survived, per layer) ->
accuracy of the Keras float model and of the int8 file on the held-out test set -> batch-1
latency -> artifacts written atomically.

Modules: ``config`` (BuildConfig, pure validation), ``training`` (fit helpers), ``stages`` (each
stage a function), ``artifacts`` (report fields read from the files, atomic writing),
``pretrained`` (``--weights imagenet``: the same artifacts without training). :func:`build` is
the orchestrator.
"""

from __future__ import annotations

from dataclasses import asdict

from mobilekit.pipeline.config import (STAGE_EPOCHS, TRAINING_ARCH_KWARGS, BuildConfig, arch_defaults,
                                       arch_kwargs, preflight)

NUMERICS_IMAGES = 200  # test images the build's per-layer numerics run on

__all__ = ["BuildConfig", "build", "preflight", "arch_kwargs", "arch_defaults", "TRAINING_ARCH_KWARGS",
           "STAGE_EPOCHS"]


def _train(cfg: BuildConfig, timer, data, model):
    """Float training (with its teacher), then the recipe's pruning, clustering and QAT stages."""
    from mobilekit._tf import keras
    from mobilekit.pipeline import stages

    accuracy: dict = {"test_images": int(len(data.ds.y_test)), "dataset": data.ds.name}
    teacher = None
    if cfg.teacher:
        teacher, accuracy["teacher"] = timer.run("teacher", f"Teacher {cfg.teacher}", stages.teacher, cfg, data)
        # The same student, same initial weights, data order and epochs, without the teacher.
        alone = keras.models.clone_model(model)
        alone.set_weights(model.get_weights())
        accuracy["keras_float_without_teacher"] = timer.run(
            "train_float_alone", f"Training {cfg.arch} (float) without the teacher", stages.train_float, cfg, data,
            alone)
    accuracy["keras_float"] = timer.run("train_float", f"Training {cfg.arch} (float)"
                                        + (" distilled from the teacher" if teacher else ""),
                                        stages.train_float, cfg, data, model, teacher)
    state = stages.Trained(model, accuracy)
    spec = cfg.spec
    if spec.prunes:
        title = (f"Pruning ({spec.m_by_n[0]}:{spec.m_by_n[1]} structured, tfmot m-by-n)" if spec.m_by_n
                 else "Pruning (tfmot PolynomialDecay)")
        state = timer.run("prune", title, stages.prune, cfg, data, state)
    if spec.clusters:
        state = timer.run("cluster", f"Clustering weights (tfmot, {spec.clusters} clusters per kernel)",
                          stages.cluster, cfg, data, state)
    if spec.qat:
        state = timer.run("qat", f"Quantization-aware training ({stages.qat_scheme(state)})", stages.qat, cfg, data,
                          state)
    return state


def build(cfg: BuildConfig, console=None) -> dict:
    """Run the whole pipeline and write the artifacts; returns the report dict.

    Raises:
        MobilekitError: bad settings, data or output folder, or a conversion that
            left float tensors in the int8 file.
    """
    from mobilekit import progress  # its console may be redirected (progress.use_console)
    from mobilekit._tf import keras, tf
    from mobilekit.analysis import complexity
    from mobilekit.bench import evaluate_tflite, measure_latency
    from mobilekit.hostinfo import cpu_info
    from mobilekit.pipeline import artifacts, guards, stages
    from mobilekit.pipeline.training import throughput
    from mobilekit.schema import BuildReport
    from mobilekit.tflite_file import TfliteFile

    console = console or progress.console
    out_dir = preflight(cfg)  # data, teacher file, ARM root, output folder: before TensorFlow loads
    if cfg.weights is not None:
        from mobilekit.pipeline.pretrained import build_pretrained
        return build_pretrained(cfg, out_dir, console)
    timer = stages.StageTimer(console)
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    data = timer.run("data", "Loading data", stages.load_data, cfg, console)
    warnings = guards.data_warnings(len(data.ds.x_train), cfg.batch_size)
    for line in warnings:
        console.print(f"[bold yellow]warning:[/bold yellow] {line}")
    model = stages.create_model(cfg, data)
    info = complexity(model)
    state = _train(cfg, timer, data, model)
    calibration = stages.calibration_images(cfg, data)
    float_bytes, int8_bytes, rewrites = timer.run("convert", "Converting to int8 .tflite (batch 1)", stages.convert, cfg,
                                        state, calibration)
    sparsity, survival = stages.weights_report(int8_bytes, [layer.name for layer in model.layers], state,
                                               cfg.sparsity)
    state.accuracy["tflite_int8"] = timer.run(
        "evaluate_int8", f"Evaluating the int8 file on {len(data.ds.y_test)} test images", evaluate_tflite,
        int8_bytes, data.x_test, data.ds.y_test)["top1"]
    latency = timer.run("latency", "Measuring batch-1 latency (LiteRT, 1 thread)", measure_latency, int8_bytes,
                        num_runs=cfg.latency_runs, warmup_runs=cfg.latency_warmup, num_threads=1)
    numerics = timer.run("numerics", "Comparing the int8 file with its float reference, layer by layer",
                         artifacts.numerics_section, int8_bytes, float_bytes, data.x_test[:NUMERICS_IMAGES])
    arm = stages.arm(timer, cfg, int8_bytes)
    warnings += guards.accuracy_warnings(state.accuracy, data.ds.y_test, len(data.ds.class_names))
    report = BuildReport(
        arch=cfg.arch, metaparameters={**arch_defaults(cfg.arch), **arch_kwargs(cfg.arch, cfg.arch_kwargs)},
        input_shape=list(data.ds.input_shape), classes=list(data.ds.class_names),
        num_classes=len(data.ds.class_names), params=info["params"], macs=info["macs"],
        preprocessing=data.ds.preprocessing(), **artifacts.file_fields(TfliteFile(int8_bytes), float_bytes, int8_bytes),
        recipe=guards.recipe_section(cfg), rewrites=rewrites, sparsity=sparsity, warnings=warnings or None, survival=survival,
        accuracy=state.accuracy, numerics=numerics, latency=latency, arm=arm, host=cpu_info(), seed=cfg.seed, config=asdict(cfg), versions=artifacts.versions(),
        stage_seconds=timer.seconds,
        throughput={k: throughput(v, cfg.batch_size) for k, v in timer.throughput.items()} or None)
    return artifacts.write_artifacts(out_dir, report, int8_bytes, data.ds.class_names, float_bytes)
