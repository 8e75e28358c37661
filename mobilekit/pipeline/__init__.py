"""The `mobilekit build` pipeline, driven by a compression recipe (mobilekit.recipes).

float training -> pruning (magnitude to ``sparsity``, or m-by-n) -> strip -> [fold BN,
clustering + fine-tune] -> QAT (PQAT / CQAT / PCQAT, or post-training quantization) ->
full-integer int8 conversion at batch 1 -> flatbuffer checks (what survived, per layer) ->
accuracy of the Keras float model and of the int8 file on the held-out test set -> batch-1
latency -> artifacts written atomically.

With ``weights`` and data (transfer learning) the float training is two phases on a pretrained
backbone with a new head (``transfer``); with ``weights`` and no data, ImageNet's model is used as is
(the zero-epoch case: calibrated and compared on photos, ``imagenet``).

Modules: ``config`` (BuildConfig, pure validation), ``training`` (fit helpers), ``stages`` (each
stage a function), ``transfer`` (the head and fine-tune phases), ``evaluation`` (confidence
interval, per-class accuracy, confusion), ``artifacts`` (report fields read from the files, atomic
writing), ``imagenet`` (the photo checks of an ImageNet head). :func:`build` is the orchestrator.
"""

from __future__ import annotations


from mobilekit.pipeline.config import (STAGE_EPOCHS, TRAINING_ARCH_KWARGS, BuildConfig, arch_defaults,
                                       arch_kwargs, preflight)

NUMERICS_IMAGES = 200  # test images the build's per-layer numerics run on

__all__ = ["BuildConfig", "build", "preflight", "arch_kwargs", "arch_defaults", "TRAINING_ARCH_KWARGS",
           "STAGE_EPOCHS"]


def _train(cfg: BuildConfig, timer, data, model) -> tuple:
    """Float training (with its teacher; two phases on a pretrained backbone); (the float state, the transfer
    phases or None)."""
    from mobilekit.backend import keras
    from mobilekit.pipeline import stages

    accuracy: dict = {"test_images": int(len(data.ds.y_test)), "dataset": data.ds.name}
    if cfg.imagenet_as_is:
        return stages.Trained(model, accuracy), None
    teacher = phases = None
    if cfg.teacher:
        teacher, accuracy["teacher"] = timer.run("teacher", f"Teacher {cfg.teacher}", stages.teacher, cfg, data)
        # The same student, same initial weights, data order and epochs, without the teacher.
        alone = keras.models.clone_model(model)
        alone.set_weights(model.get_weights())
        accuracy["keras_float_without_teacher"] = timer.run(
            "train_float_alone", f"Training {cfg.arch} (float) without the teacher", stages.train_float, cfg, data,
            alone)
    if cfg.transfer:
        from mobilekit.pipeline.transfer import train_phases

        phase_accuracy, phases = timer.run("transfer", f"Transfer learning: {cfg.arch} from {cfg.weights} weights",
                                           train_phases, cfg, data, model)
        accuracy.update(phase_accuracy)
        accuracy["keras_float"] = (phase_accuracy.get("keras_fine_tune") or phase_accuracy.get("keras_head")
                                   or stages.keras_metric(cfg, model, data))
    else:
        accuracy["keras_float"] = timer.run("train_float", f"Training {cfg.arch} (float)"
                                            + (" distilled from the teacher" if teacher else ""),
                                            stages.train_float, cfg, data, model, teacher)
    return stages.Trained(model, accuracy), phases


def _compress(cfg: BuildConfig, timer, data, state, suffix: str = "", label: str = "", fallback: bool = True,
              graph=None) -> tuple:
    """The recipe's pruning, clustering and QAT stages on ``state``; (the state before QAT, the final state). With
    ``fallback``, QAT that lost accuracy gives way to post-training quantization (stages.qat_or_fallback); stage
    names get ``suffix`` and titles ``label`` (an accuracy budget's candidates), and pruning keeps its wrapped model
    in ``graph`` (a stages.PruneGraph) for the next candidate."""
    from mobilekit.pipeline import stages

    spec = cfg.spec
    if spec.prunes:
        title = (f"Pruning ({spec.m_by_n[0]}:{spec.m_by_n[1]} structured, tfmot m-by-n)" if spec.m_by_n
                 else "Pruning (tfmot PolynomialDecay)")
        state = timer.run("prune" + suffix, title + label, stages.prune, cfg, data, state, graph)
    if spec.clusters:
        state = timer.run("cluster" + suffix, f"Clustering weights (tfmot, {spec.clusters} clusters per kernel)" + label,
                          stages.cluster, cfg, data, state)
    before = state
    if spec.qat:
        state = timer.run("qat" + suffix, f"Quantization-aware training ({stages.qat_scheme(state)})" + label,
                          stages.qat, cfg, data, state)
        if fallback:
            state = stages.qat_or_fallback(before, state, len(data.ds.y_test))
            if "qat_fallback" in state.accuracy:
                timer.console.print(f"[bold yellow]warning:[/bold yellow] {state.accuracy['qat_fallback']}")
    return before, state


def _compress_and_convert(cfg: BuildConfig, timer, data, state, calibration) -> tuple:
    """(the final state, its (float, int8, rewrites) files, report.json's ``budget`` or None): the recipe as asked,
    or the accuracy budget's search (mobilekit.pipeline.budget)."""
    from mobilekit.pipeline import stages

    if cfg.max_accuracy_drop is not None:
        from mobilekit.pipeline.budget import search

        return search(cfg, timer, data, state, calibration, _compress)
    state = _compress(cfg, timer, data, state)[1]
    files = timer.run("convert", f"Converting to int8 .tflite (batch 1, {len(calibration)} calibration images)",
                      stages.convert, cfg, state, calibration, data)
    return state, files, None


def build(cfg: BuildConfig, console=None, source=None) -> dict:
    """Run the whole pipeline and write the artifacts; returns the report dict.

    ``source`` (a ``mobilekit.data.DataSource``): the data already in memory (a sweep's trial on a Ray worker),
    used instead of reading ``cfg.data``.

    Raises:
        MobilekitError: bad settings, data or output folder, a conversion that left float tensors in the
            int8 file, or an int8 file that lost most of the float model's accuracy (nothing written).
    """
    from mobilekit import progress  # its console may be redirected (progress.use_console)
    from mobilekit.pipeline import stages
    from mobilekit.pipeline.config import distributed

    console = console or progress.console
    out_dir = preflight(cfg, data_given=source is not None)  # data, weights, teacher file, ARM root, output folder: before TensorFlow loads
    stages.check_model(cfg)  # the input size the backbone takes, the block --fine-tune names
    if not distributed(cfg):
        return _build(cfg, console, source, out_dir)
    from mobilekit.pipeline import parallel

    session = parallel.start(cfg, console)  # Ray up, the cluster's room for the workers checked before any data is read
    console.print(f"[bold]Ray Train: {cfg.workers} worker(s) on {session.where()}[/bold]")
    try:
        return _build(cfg, console, source, out_dir)
    finally:
        parallel.stop()


def _build(cfg: BuildConfig, console, source, out_dir) -> dict:
    """:func:`build` after its checks (and, distributed, with the Ray Train session started)."""
    from mobilekit.backend import keras, tf
    from mobilekit.pipeline import guards, stages

    task = stages.task(cfg)
    timer = stages.StageTimer(console)
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    data = timer.run("data", "Loading data" if not cfg.imagenet_as_is else "Loading scikit-image's photos",
                     task.load, cfg, console, source)
    if cfg.max_accuracy_drop is not None:
        from mobilekit.pipeline.budget import hold_out

        data = hold_out(cfg, data, console)
    warnings = [] if cfg.imagenet_as_is else [*data.ds.extra.get("warnings", []),
                                              *guards.data_warnings(len(data.ds.x_train), cfg.batch_size)]
    warnings += [n for n in (stages.budget_note(cfg, stage, getattr(cfg, f"{stage}_epochs"), len(data.ds.x_train))
                             for stage, on in (("prune", cfg.spec.prunes), ("cluster", cfg.spec.clusters),
                                               ("qat", cfg.spec.qat)) if on) if n]
    for line in warnings:
        console.print(f"[bold yellow]warning:[/bold yellow] {line}")
    model = (timer.run("weights", f"Porting {cfg.arch}'s {cfg.weights} weights", task.create_model, cfg, data)
             if cfg.weights else task.create_model(cfg, data))
    state, phases = _train(cfg, timer, data, model)
    calibration = stages.calibration_images(cfg, data)
    state, (float_bytes, int8_bytes, rewrites), budget = _compress_and_convert(cfg, timer, data, state, calibration)
    budget_lines = []  # a missed budget, then a validation split too small to resolve it
    for key, colour in (("warning", "red"), ("noise", "yellow")):
        if budget and budget.get(key):
            console.print(f"[bold {colour}]warning:[/] {budget[key]}")
            budget_lines.append(budget[key])
    if stages.needs_precision_stage(cfg):
        int8_bytes, precision = timer.run("precision", f"Precision {cfg.precision}: layers out of int8, judged "
                                          "against the float file", stages.precision, cfg, data, float_bytes,
                                          int8_bytes, calibration, console)
    else:
        int8_bytes, precision = stages.precision(cfg, data, float_bytes, int8_bytes, calibration, console)
    title = (f"App interface: {cfg.io} pixels in, made at conversion" if hasattr(task, "interface") else
             f"App interface: {cfg.io} in and out" + (f", checked against the int8 body on {len(data.x_test)} test "
                                                      "inputs" if cfg.io != "int8" else ""))
    int8_bytes, interface = timer.run("interface", title, stages.interface, cfg, data, int8_bytes)
    float_bytes = task.with_metadata(cfg, data, float_bytes, "float")  # as they ship: with what app runtimes read
    int8_bytes = task.with_metadata(cfg, data, int8_bytes, cfg.precision)
    evaluated = timer.run("evaluate_int8", f"Evaluating the int8 file on {len(data.ds.y_test)} test "
                          + ("photos" if cfg.imagenet_as_is else "images"), task.evaluate, cfg, data, state,
                          int8_bytes)
    task.check_kept(state.accuracy, data)
    return _report(cfg, timer, data, model, state, phases, (float_bytes, int8_bytes, rewrites, precision, interface),
                   evaluated, [*budget_lines, *warnings], out_dir, budget)


def _distributed_section(cfg) -> dict | None:
    from mobilekit.pipeline.config import distributed

    if not distributed(cfg):
        return None
    from mobilekit.pipeline import parallel

    return parallel.current().section()


def _report(cfg, timer, data, model, state, phases, files, evaluated, warnings, out_dir, budget=None) -> dict:
    """Latency, numerics, ARM counts, then the report and the artifacts written whole."""
    from mobilekit import app_metadata
    from mobilekit.complexity import complexity
    from mobilekit.bench import measure_latency
    from mobilekit.hostinfo import cpu_info
    from mobilekit.pipeline import artifacts, guards, stages
    from mobilekit.pipeline.training import throughput
    from mobilekit.schema import BuildReport
    from mobilekit.tflite_file import TfliteFile

    float_bytes, int8_bytes, rewrites, precision, interface = files
    latency = timer.run("latency", "Measuring batch-1 latency (LiteRT, 1 thread)", measure_latency, int8_bytes,
                        num_runs=cfg.latency_runs, warmup_runs=cfg.latency_warmup, num_threads=1)
    numerics = timer.run("numerics", "Comparing the int8 file with its float reference, layer by layer",
                         artifacts.numerics_section, int8_bytes, float_bytes, data.x_test[:NUMERICS_IMAGES])
    arm = stages.arm(timer, cfg, int8_bytes)
    if not cfg.imagenet_as_is:
        warnings += [state.accuracy["qat_fallback"]] if "qat_fallback" in state.accuracy else []
        warnings += stages.task(cfg).warnings(state.accuracy, data, evaluated)
    info = complexity(model)
    weights = stages.weights_section(cfg)
    int8_file = TfliteFile(int8_bytes)  # parsed once: the report's file fields and its app section
    app = app_metadata.section(int8_file)
    app["io"].update(interface)
    if interface.get("identical", 0) < interface.get("images", 0):
        warnings.append(f"the {cfg.io} interface changed {interface['images'] - interface['identical']} of "
                        f"{interface['images']} answers of the int8 file it goes around: report it as a bug")
    report = BuildReport(
        arch=cfg.arch, weights=cfg.weights, source=weights["source"] if weights else None,
        metaparameters=stages.metaparameters(cfg), input_shape=list(data.ds.input_shape),
        **stages.task(cfg).report_fields(data), params=info["params"], macs=info["macs"],
        **artifacts.file_fields(int8_file, float_bytes, int8_bytes), app=app,
        recipe=guards.recipe_section(cfg), rewrites=rewrites, precision=precision,
        **stages.sparsity_fields(cfg, int8_bytes, model, state, budget["chosen"]["sparsity"] if budget else None),
        budget=budget,
        warnings=warnings or None, accuracy=state.accuracy, numerics=numerics, latency=latency, arm=arm,
        calibration=stages.calibration_section(cfg, data), host=cpu_info(), seed=cfg.seed, config=cfg.to_dict(),
        transfer={"weights": weights, "phases": phases} if weights else None, versions=artifacts.versions(),
        stage_seconds=timer.seconds, distributed=_distributed_section(cfg),
        throughput={k: throughput(v, cfg.batch_size) for k, v in timer.throughput.items()} or None)
    return artifacts.write_artifacts(out_dir, report, int8_bytes, float_bytes, stages.task(cfg).app_files(data),
                                     evaluated.get("files", {}))
