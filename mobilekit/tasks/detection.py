"""Object detection: boxes in COCO, Pascal VOC, YOLO or KITTI folders (or the embedded set), a SqueezeDet-style
detector (mobilekit.archs.squeezedet), per-anchor targets and a focal + smooth-L1 loss, and COCO mAP of the Keras
model and of the int8 file with TFLite's detection post-processing (docs/detection.md).

The dataset it reads is a :class:`mobilekit.data.Dataset` whose ``y_train`` holds the packed per-anchor targets
(mobilekit.detection.targets) and whose ``y_test`` holds the test images' :class:`Labelled` records (boxes in their
own pixels: the metrics are computed there). ``extra`` keeps the anchors, the grid and the post-processing."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from mobilekit.errors import MobilekitError
from mobilekit.settings import size_hw
from mobilekit.tasks.base import Data

TEST_SHARE = 0.2  # of the images held out as the test set when no --test-data is given (seeded)
PR_PLOT = "precision_recall.png"


def head_settings(cfg) -> dict:
    """The detector's builder keywords as built: its defaults, the build's training keywords, the user's."""
    from mobilekit.pipeline.config import arch_defaults, arch_kwargs

    return {**arch_defaults(cfg.arch), **arch_kwargs(cfg.arch, cfg.arch_kwargs)}


def feature_grid(kwargs: dict, size) -> tuple[int, int]:
    """The ConvDet grid (rows, columns) of a squeezedet built with ``kwargs`` at ``size`` (a side, or a (height,
    width) pair): the backbone's stride-16 feature map, SqueezeNet's valid pooling or four stride-2 convs padded
    to ``ceil(n / 2)`` each."""
    from mobilekit.archs.squeezedet import SQUEEZENETS
    from mobilekit.archs.squeezenet import spatial_sizes

    def cells(n: int) -> int:
        if kwargs["backbone"] in SQUEEZENETS:
            return spatial_sizes(kwargs["backbone"].removeprefix("squeezenet"), n)[-1]
        return -(-n // 16)

    h, w = size_hw(size)
    return cells(h), cells(w)


def _normalized(item) -> np.ndarray:
    from mobilekit.detection.boxes import to_normalized

    return np.clip(to_normalized(item.boxes, item.width, item.height), 0.0, 1.0)


def _split(items: list, seed: int) -> tuple[list, list]:
    rng = np.random.default_rng(seed + 11)
    order = rng.permutation(len(items))
    n_test = max(1, int(round(len(items) * TEST_SHARE)))
    return [items[i] for i in sorted(order[n_test:])], [items[i] for i in sorted(order[:n_test])]


def detection_source(data: str | None, test_data: str | None = None):
    """A detector's data as it travels to a sweep's workers (a :class:`mobilekit.data.DataSource`): each folder's
    files as they lie, any layout; without ``data``, the embedded set, made here once."""
    from mobilekit.data import DataSource
    from mobilekit.detection.formats import folder_files

    if data is None:
        from mobilekit.detection.embedded import make_embedded_set

        with tempfile.TemporaryDirectory(prefix="mobilekit-embedded-") as work:
            train, test = make_embedded_set(work)
            return DataSource(None, None, trees={"data": folder_files(train), "test": folder_files(test)})
    trees = {"data": folder_files(data), **({"test": folder_files(test_data)} if test_data else {})}
    return DataSource(data, test_data, trees=trees)


EMBEDDED_NAME = "the embedded detection set (Fashion-MNIST items on photos)"


def read_sets(cfg, console, work: Path, source=None) -> tuple[object, list, list, str]:
    """(the training DetectionSet, its training items, the test items, the data's name): ``cfg.data`` and
    ``cfg.test_data``, or the embedded set made in ``work`` (a temporary folder the caller reads it from); with
    ``source`` (a sweep's :class:`mobilekit.data.DataSource`), its folders written in ``work`` and named as the
    driver named them. The embedded set is one fixed set (its own seed): the build's seed seeds the training."""
    from mobilekit.detection import formats

    data, test_data = cfg.data, cfg.test_data
    if source is not None:
        data, test_data = source.write_trees(work)
    elif cfg.data is None:
        from mobilekit.detection.embedded import make_embedded_set

        data, test_data = make_embedded_set(work)
    if cfg.data is None:
        train, test = formats.read_detection_set(data), formats.read_detection_set(test_data)
        return train, train.items, test.items, EMBEDDED_NAME
    train = formats.read_detection_set(data)
    console.print(f"   {cfg.data}: {train.summary()}")
    if test_data is None:
        items, tests = _split(train.items, cfg.seed)
        return train, items, tests, f"{cfg.data} ({TEST_SHARE:.0%} held out as test)"
    test = formats.read_detection_set(test_data)
    if test.class_names != train.class_names:
        extra = sorted(set(test.class_names) - set(train.class_names))
        if extra:
            raise MobilekitError(f"test data {cfg.test_data} has classes the training data has not: {', '.join(extra)}")
        index = {name: i for i, name in enumerate(train.class_names)}
        test.items = [_relabelled(item, [index[test.class_names[k]] for k in range(len(test.class_names))])
                      for item in test.items]
    return train, train.items, test.items, f"{cfg.data} (test: {cfg.test_data})"


def _limited(items: list, limit: int | None, seed: int) -> list:
    """A seeded choice of ``limit`` of ``items`` in their order (all of them without a limit)."""
    if limit is None or limit >= len(items):
        return items
    chosen = np.sort(np.random.default_rng(seed).choice(len(items), limit, replace=False))
    return [items[i] for i in chosen]


def _relabelled(item, mapping: list[int]):
    from dataclasses import replace

    return replace(item, labels=np.asarray(mapping, np.int32)[item.labels] if len(item.labels) else item.labels)


class Detection:
    """The detection :class:`mobilekit.tasks.Task`."""

    name = "detection"

    def load(self, cfg, console, source=None) -> Data:
        """The training images with their per-anchor targets (anchors from k-means over the training boxes), a box-
        aware jittered copy of each, and the test images with their boxes."""
        from mobilekit.data import Dataset, to_float
        from mobilekit.detection.boxes import anchor_grid, kmeans_anchors
        from mobilekit.detection.postprocess import PostProcess
        from mobilekit.detection.targets import jitter, targets

        size = cfg.input_size
        with tempfile.TemporaryDirectory(prefix="mobilekit-detection-") as work:  # made or shipped data, while read
            train, items, tests, name = read_sets(cfg, console, Path(work), source)
            items, tests = _limited(items, cfg.limit_train, cfg.seed), _limited(tests, cfg.limit_test, cfg.seed + 1)
            if not any(len(item.boxes) for item in items):
                raise MobilekitError(f"no training image of {name} has a box")
            x, x_test = decoded_images(items, size), decoded_images(tests, size)
        kwargs = head_settings(cfg)
        k = kwargs["anchors_per_cell"]
        grid = feature_grid(kwargs, size)
        boxes = [_normalized(item) for item in items]
        hw = np.concatenate([b[:, 2:] - b[:, :2] for b in boxes if len(b)])
        shapes = kmeans_anchors(hw[(hw > 0).all(axis=1)], k, seed=cfg.seed)
        anchors = anchor_grid(shapes, *grid)
        classes = len(train.class_names)
        rng = np.random.default_rng(cfg.seed + 13)
        images, packed = [], []
        for image, b, item in zip(x, boxes, items):
            images.append(image)
            packed.append(targets(b, item.labels, item.ignore, anchors, classes))
            moved = jitter(image, b, item.labels, item.ignore, rng)
            images.append(moved[0])
            packed.append(targets(moved[1], moved[2], moved[3], anchors, classes))
        post = PostProcess(classes)
        ds = Dataset(name, np.stack(images), np.stack(packed), x_test, tests, list(train.class_names),
                     "detection", extra={"anchors": anchors, "anchor_shapes": shapes, "grid": grid,
                                         "anchors_per_cell": k, "post": post, "layout": train.layout,
                                         "training_images": len(items)})
        positives = int(ds.y_train[..., 4].sum())
        console.print(f"   {len(items)} training images (+ {len(items)} jittered copies, {positives} positive anchors), "
                      f"{len(tests)} test images, {classes} classes, {grid[0]}x{grid[1]} cells x {k} anchors")
        return Data(ds, to_float(x_test))

    def create_model(self, cfg, data: Data | None = None):
        """The untrained detector for the data's classes; with ``weights``, its backbone's layers hold the ported
        ImageNet weights (copied by name from the pretrained classifier; the head starts untrained)."""
        from mobilekit import archs
        from mobilekit.pipeline.config import arch_kwargs

        shape = data.ds.input_shape if data else (*size_hw(cfg.input_size), 3)
        classes = len(data.ds.class_names) if data else 10
        kwargs = arch_kwargs(cfg.arch, cfg.arch_kwargs)
        if cfg.weights is None:
            return archs.create(cfg.arch, input_shape=shape, classes=classes, **kwargs)
        from mobilekit.weights import pretrained_for, pretrained_model

        entry = pretrained_for(cfg.arch, cfg.weights, cfg.arch_kwargs)
        model = archs.create(cfg.arch, input_shape=shape, classes=classes, **{**kwargs, **entry.builder_kwargs})
        imagenet = pretrained_model(entry.arch, entry.weights, shape)
        names = {layer.name for layer in imagenet.layers if layer.weights}
        for layer in model.layers:
            if layer.weights and layer.name in names:
                layer.set_weights(imagenet.get_layer(layer.name).get_weights())
        return model

    def loss(self, cfg, model) -> tuple[object, list, int | None]:
        from mobilekit.detection.targets import box_loss, class_loss

        return [box_loss, class_loss], [], None

    def train_dataset(self, x, y, cfg, seed_offset: int, one_hot=None, order=None, batch: int | None = None):
        """Shuffled, repeated, batched (image, (deltas' targets, scores' targets)), each image flipped at random
        with its targets (a detector always trains with flips; the jittered copies are made at load). ``order`` and
        ``batch``: a data-parallel worker's rows, as the classification task takes them."""
        from mobilekit.backend import tf
        from mobilekit.data import OFFSET, SCALE
        from mobilekit.detection.targets import flip_targets, split

        grid_h, grid_w = feature_grid(head_settings(cfg), cfg.input_size)
        k = y.shape[1] // (grid_h * grid_w)

        def prep(image, target):
            image = tf.cast(image, tf.float32) * SCALE + OFFSET
            flip = tf.random.uniform([], seed=cfg.seed + seed_offset) < 0.5
            image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
            target = tf.cond(flip, lambda: flip_targets(target, grid_h, grid_w, k), lambda: target)
            return image, split(target)

        if order is not None:
            from mobilekit.data import rows

            return rows(x, y, order).map(prep).batch(batch, drop_remainder=True).prefetch(2)
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        ds = ds.shuffle(len(x), seed=cfg.seed + seed_offset, reshuffle_each_iteration=True).repeat()
        return ds.map(prep).batch(cfg.batch_size, drop_remainder=True).prefetch(2)

    def labels(self, y, one_hot=None):
        """A batch of targets as the model's two outputs take them."""
        from mobilekit.backend import tf
        from mobilekit.detection.targets import split

        return [tf.constant(t) for t in split(np.asarray(y))]

    def detections(self, data: Data, deltas: np.ndarray, scores: np.ndarray) -> list:
        """Per test image, the decoded detections (numpy, as the op computes them) in the image's own pixels."""
        from mobilekit.detection.boxes import to_pixels
        from mobilekit.detection.evaluate import Found
        from mobilekit.detection.postprocess import reference

        out = []
        for item, d, s in zip(data.ds.y_test, deltas, scores):
            boxes, labels, conf = reference(d, s, data.ds.extra["anchors"], data.ds.extra["post"])
            out.append(Found(to_pixels(np.clip(boxes, 0, 1), item.width, item.height), conf, labels))
        return out

    def keras_metrics(self, model, data: Data) -> dict:
        from mobilekit.detection.evaluate import coco_metrics
        from mobilekit.pipeline.profile import record

        t0 = time.perf_counter()
        deltas, logits = model.predict(data.x_test, batch_size=100, verbose=0)
        found = self.detections(data, deltas, 1.0 / (1.0 + np.exp(-logits.astype(np.float64))))
        record("evaluate_s", time.perf_counter() - t0)
        record("evaluate_images", len(data.x_test))
        return coco_metrics(data.ds.y_test, found, list(data.ds.class_names), data.ds.extra["post"].max_detections)

    def keras_metric(self, model, data: Data) -> float:
        """mAP@0.5 of a Keras detector on the test images (decoded and suppressed as the int8 file's op does); each
        evaluation's mAP@[.5:.95] is kept in order (``data.ds.extra["keras_maps"]``) for the report."""
        metrics = self.keras_metrics(model, data)
        data.ds.extra.setdefault("keras_maps", []).append(metrics["map"])
        return metrics["map50"]

    @staticmethod
    def keras_float_map(accuracy: dict, data: Data) -> float | None:
        """The float model's mAP@[.5:.95]: the evaluation that gave ``keras_float``, which every Keras evaluation
        stored after it (``keras_pruned``, ``keras_qat`` ...) follows in order."""
        keys = [k for k in accuracy if k.startswith("keras_")]
        maps = data.ds.extra.get("keras_maps", [])
        if "keras_float" not in keys or not maps:
            return None
        after = len(keys) - 1 - keys.index("keras_float")
        return maps[-1 - after] if after < len(maps) else None

    def evaluate(self, cfg, data: Data, state, int8_bytes: bytes) -> dict:
        """The int8 file on the test images as an app runs it (its post-processing op decodes and suppresses):
        mAP@0.5 into ``state.accuracy``, the report's ``detection`` section and the precision-recall plot."""
        from mobilekit.detection.boxes import to_pixels
        from mobilekit.detection.evaluate import Found, coco_metrics
        from mobilekit.detection.postprocess import DECODE_FORMULA, detections_on, raw_outputs_on
        from mobilekit.tflite_file import TfliteFile

        ds = data.ds
        uint8 = TfliteFile(int8_bytes).inputs[0].dtype == "UINT8"
        fed = ds.x_test if uint8 else (ds.x_test.astype(np.int16) - 128).astype(np.int8)
        if cfg.raw_outputs:  # the app decodes and suppresses: as the op would (the same numpy reference)
            found = self.detections(data, *raw_outputs_on(int8_bytes, fed))
        else:
            found = [Found(to_pixels(np.clip(got["boxes"], 0, 1), item.width, item.height), got["scores"],
                           got["classes"]) for item, got in zip(ds.y_test, detections_on(int8_bytes, fed))]
        metrics = coco_metrics(ds.y_test, found, list(ds.class_names), ds.extra["post"].max_detections)
        state.accuracy["metric"] = "mAP@0.5"
        state.accuracy["tflite_int8"] = metrics["map50"]
        post = ds.extra["post"]
        state.accuracy["detection"] = {
            "map": metrics["map"], "map50": metrics["map50"],
            "keras_float_map": self.keras_float_map(state.accuracy, data), "per_class": metrics["per_class"],
            "anchors_per_cell": ds.extra["anchors_per_cell"], "grid": list(ds.extra["grid"]),
            "anchor_shapes": np.round(ds.extra["anchor_shapes"], 5).tolist(),
            "score_threshold": post.score_threshold, "nms_iou": post.iou_threshold,
            "max_detections": post.max_detections, "test_images": len(ds.y_test),
            "test_boxes": int(sum(len(i.boxes) for i in ds.y_test)),
            "post_processing": "the app's (--raw-outputs)" if cfg.raw_outputs else "TFLite_Detection_PostProcess",
            "decode": {"scales": list(post.scales), "formula": DECODE_FORMULA}}
        return {"files": {"pr_png": (PR_PLOT, pr_plot(metrics, f"{cfg.arch} int8: precision-recall at IoU 0.5"))}}

    def convert(self, cfg, data: Data, state, calibration: np.ndarray) -> tuple[bytes, bytes, list]:
        """(float .tflite, int8 .tflite, rewrites log) of the detector with TFLite's post-processing op, the int8
        file with ``cfg.io`` pixels in (uint8: the pixel itself, what MediaPipe Tasks feeds) and int8 up to the
        op (refused otherwise); with ``cfg.raw_outputs`` without the op, and int8 throughout."""
        from mobilekit.detection.postprocess import convert_detector, detector_problems
        from mobilekit.optimize import float_twin
        from mobilekit.ptq import repair_saturated_biases
        from mobilekit.tflite_file import TfliteFile

        anchors = data.ds.extra["anchors"]
        post = None if cfg.raw_outputs else data.ds.extra["post"]
        reference = state.model if state.float_model is None else (
            float_twin(state.model, state.float_model) or state.float_model)
        int8 = convert_detector(state.model, anchors, calibration, post, input_type=cfg.io, logits=True)
        float_bytes = convert_detector(reference, anchors, None, post, logits=True)
        int8, repaired = repair_saturated_biases(int8, float_bytes)
        problems = TfliteFile(int8).float_problems() if cfg.raw_outputs else detector_problems(int8)
        if problems:
            what = "full int8" if cfg.raw_outputs else "int8 up to its post-processing"
            raise MobilekitError(f"the int8 detector is not {what}: {problems[0]}")
        return float_bytes, int8, [*state.rewrites, *repaired]

    def interface(self, cfg, data: Data, content: bytes) -> tuple[bytes, dict]:
        """The app interface is made at conversion (the converter's uint8 or int8 input; the outputs are the
        post-processing op's floats): (``content``, whether its input is the plain pixel)."""
        from mobilekit.data import OFFSET, SCALE, is_plain_pixel
        from mobilekit.tflite_file import TfliteFile

        tensor = TfliteFile(content).inputs[0]
        return content, {"plain_pixel": is_plain_pixel(SCALE, OFFSET, float(tensor.scale[0]),
                                                       int(tensor.zero_point[0]), cfg.io)}

    def check_kept(self, accuracy: dict, data: Data) -> None:
        """A detector whose int8 file lost most of its float mAP is refused."""
        float_map, int8_map = accuracy.get("keras_float"), accuracy.get("tflite_int8")
        if float_map and int8_map is not None and float_map > 0.05 and int8_map < 0.5 * float_map:
            raise MobilekitError(f"the int8 file's mAP@0.5 ({int8_map:.3f}) lost more than half of the float model's "
                                 f"({float_map:.3f}); nothing was written")

    def warnings(self, accuracy: dict, data: Data, evaluated: dict) -> list[str]:
        out = []
        float_map, int8_map = accuracy.get("keras_float"), accuracy.get("tflite_int8")
        if float_map is not None and int8_map is not None and float_map - int8_map > 0.02:
            out.append(f"the int8 file's mAP@0.5 is {100 * (float_map - int8_map):.1f} points under the float "
                       "model's")
        return out

    def report_fields(self, data: Data) -> dict:
        return {"classes": list(data.ds.class_names), "num_classes": len(data.ds.class_names),
                "preprocessing": data.ds.preprocessing()}

    def with_metadata(self, cfg, data: Data, content: bytes, kind: str) -> bytes:
        """``content`` with object-detector TFLite metadata (mobilekit.app_metadata.object_detector), its outputs in
        the post-processing op's order; a ``--raw-outputs`` file (no detector contract to describe) as it is."""
        if cfg.raw_outputs:
            return content
        from mobilekit.app_metadata import object_detector

        names = data.ds.class_names
        return object_detector(content, name=cfg.arch, description=f"{cfg.arch} object detector ({kind}), "
                               f"{len(names)} classes of {data.ds.name}; built by mobilekit",
                               preprocessing=data.ds.preprocessing(), labels=list(names))

    def app_files(self, data: Data) -> dict[str, tuple[str, bytes]]:
        """labels.txt (class names in output order) and anchors.txt (``yc xc h w`` normalised, one an anchor)."""
        anchors = "".join(" ".join(f"{v:.6f}" for v in row) + "\n" for row in data.ds.extra["anchors"])
        return {"labels": ("labels.txt", "".join(f"{c}\n" for c in data.ds.class_names).encode("utf-8")),
                "anchors": ("anchors.txt", anchors.encode("ascii"))}


def decoded_images(items, size) -> np.ndarray:
    """The images of ``items`` as uint8 ``[n, height, width, 3]`` (``size``: a side or a (height, width) pair),
    read as the image folders are (mobilekit.data.decode_image: the pixel limit, the EXIF orientation, stretched
    to the size)."""
    from mobilekit.data import decode_image

    out = np.zeros((len(items), *size_hw(size), 3), np.uint8)
    for n, item in enumerate(items):
        out[n] = decode_image(Path(item.image), size, 3)[0]
    return out


def pr_plot(metrics: dict, title: str) -> bytes:
    """A PNG of each class's precision against recall at IoU 0.5 (COCO's 101 recall points)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    recall = metrics.get("recall") or np.linspace(0, 1, 101).tolist()
    curves = {name: curve for name, curve in metrics["pr50"].items() if curve}
    for name, curve in curves.items():
        ax.plot(recall, curve, label=f"{name} ({metrics['per_class'][name]['ap50']:.2f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    if curves:
        ax.legend(fontsize=7, loc="lower left")
    else:
        ax.text(0.5, 0.5, "no class was detected", ha="center", va="center")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
