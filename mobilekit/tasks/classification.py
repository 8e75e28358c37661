"""Image classification: images in class folders (or Fashion-MNIST), a softmax head over the classes,
cross-entropy, top-1 accuracy with its 95% interval, per-class accuracy and the confusion matrix, and
labels.txt beside the .tflite for the app. With ImageNet weights and no data, ImageNet's own head is
calibrated and compared on photos (mobilekit.pipeline.imagenet)."""

from __future__ import annotations

import time

import numpy as np

from mobilekit.tasks.base import Data


def train_dataset(x, y, cfg, seed_offset: int, num_classes: int | None = None, order=None, batch: int | None = None):
    """Shuffled, repeated, batched uint8 images -> ``pixel * SCALE + OFFSET`` (the build's preprocessing);
    one-hot labels when ``num_classes`` is given (label smoothing needs them). ``order``: the rows to take, in that
    order, in batches of ``batch`` (a data-parallel worker's share: mobilekit.data.rows), instead of shuffling."""
    from mobilekit.backend import tf
    from mobilekit.data import OFFSET, SCALE

    def prep(images, labels):
        images = tf.cast(images, tf.float32) * SCALE + OFFSET
        if cfg.augment:
            images = tf.image.random_flip_left_right(images, seed=cfg.seed + seed_offset)
        if num_classes:
            labels = tf.one_hot(labels, num_classes)
        return images, labels

    if order is not None:
        from mobilekit.data import rows

        return rows(x, y, order).batch(batch, drop_remainder=True).map(prep).prefetch(2)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(x), seed=cfg.seed + seed_offset, reshuffle_each_iteration=True).repeat()
    return ds.batch(cfg.batch_size, drop_remainder=True).map(prep).prefetch(2)


class Classification:
    """The classification :class:`mobilekit.tasks.Task`."""

    name = "classification"

    def load(self, cfg, console, source=None) -> Data:
        """The build's dataset: ``cfg.data`` (or ``source``, already in memory on a sweep's worker), or the
        photos an ImageNet head is calibrated and compared on."""
        from mobilekit import data as data_mod

        if cfg.imagenet_as_is:
            from mobilekit.photos import photo_dataset

            ds = photo_dataset(cfg.input_size)
            console.print(f"   {len(ds.x_test)} photos at {cfg.input_size}x{cfg.input_size}: "
                          f"{', '.join(ds.extra['photos'])}")
            return Data(ds, data_mod.to_float(ds.x_test))
        if source is not None:  # in memory (a sweep's trial): the same Dataset, not read from cfg.data
            ds = source.dataset(cfg.input_size, 3, seed=cfg.seed, limit_train=cfg.limit_train,
                                limit_test=cfg.limit_test)
        else:
            ds = data_mod.load(cfg.data, cfg.input_size, 3, seed=cfg.seed, limit_train=cfg.limit_train,
                               limit_test=cfg.limit_test, test_data=cfg.test_data)
        console.print(f"   {ds.name}: {len(ds.x_train)} train / {len(ds.x_test)} test images, "
                      f"{len(ds.class_names)} classes, input {ds.input_shape}")
        return Data(ds, data_mod.to_float(ds.x_test))

    def create_model(self, cfg, data: Data | None = None):
        """The untrained arch with the build's training keywords and a head for the data's classes; with
        ``weights``, the ported pretrained model (a new head, or ImageNet's own without data)."""
        from mobilekit import archs
        from mobilekit.pipeline.config import arch_kwargs

        shape = data.ds.input_shape if data else (cfg.input_size, cfg.input_size, 3)
        classes = len(data.ds.class_names) if data else 10
        if cfg.weights is not None:
            from mobilekit.weights import pretrained_model

            return pretrained_model(cfg.arch, cfg.weights, shape, None if cfg.imagenet_as_is else classes)
        return archs.create(cfg.arch, input_shape=shape, classes=classes, **arch_kwargs(cfg.arch, cfg.arch_kwargs))

    def loss(self, cfg, model) -> tuple[object, list, int | None]:
        """(loss, metrics, classes when labels go one-hot): sparse cross-entropy, or cross-entropy on one-hot
        labels with ``label_smoothing`` (a custom train step, distillation, computes its own)."""
        from mobilekit.backend import keras

        smoothing = getattr(cfg, "label_smoothing", 0.0) or 0.0
        own_step = type(model).train_step is not keras.Model.train_step
        one_hot = int(model.output_shape[-1]) if smoothing and not own_step else None
        loss = (keras.losses.CategoricalCrossentropy(label_smoothing=smoothing) if one_hot
                else "sparse_categorical_crossentropy")
        return loss, ["accuracy"], one_hot

    def train_dataset(self, x, y, cfg, seed_offset: int, one_hot: int | None = None, order=None,
                      batch: int | None = None):
        """Shuffled, repeated, batched images and labels (:func:`train_dataset`)."""
        return train_dataset(x, y, cfg, seed_offset, one_hot, order, batch)

    def labels(self, y, one_hot: int | None = None):
        """A batch of class indices as the model takes them: one-hot over ``one_hot`` classes when given."""
        from mobilekit.backend import tf

        return tf.one_hot(y, one_hot) if one_hot else tf.constant(y)

    def keras_metric(self, model, data: Data) -> float:
        """Top-1 accuracy of a Keras model on the float test images."""
        from mobilekit.pipeline.profile import record

        t0 = time.perf_counter()
        probs = model.predict(data.x_test, batch_size=500, verbose=0)
        record("evaluate_s", time.perf_counter() - t0)
        record("evaluate_images", len(data.x_test))
        return float(np.mean(np.argmax(probs, axis=-1) == data.ds.y_test))

    def evaluate(self, cfg, data: Data, state, int8_bytes: bytes) -> dict:
        """The int8 file on the test set: its accuracy (into ``state.accuracy``), the 95% interval, per-class
        accuracy and the confusion matrix (``files``: its PNG); for an ImageNet head, the photo-by-photo
        float/int8 comparison."""
        from mobilekit.bench import evaluate_tflite

        if cfg.imagenet_as_is:
            from mobilekit.pipeline.imagenet import compare_on_photos

            state.accuracy.update(dataset="scikit-image photos (no ImageNet data offline)")
            state.accuracy.pop("test_images", None)
            state.accuracy["photos"] = compare_on_photos(state.model, int8_bytes, data.ds.extra["photos"],
                                                         data.ds.x_test)
            return {}
        from mobilekit.pipeline.evaluation import class_report, confusion_png, thin_class_warnings

        result = evaluate_tflite(int8_bytes, data.x_test, data.ds.y_test)
        state.accuracy["tflite_int8"] = result["top1"]
        detail = class_report(data.ds.y_test, result["predictions"], list(data.ds.class_names))
        state.accuracy["tflite_int8_ci95"] = detail.pop("ci95")
        state.accuracy["ci_method"] = detail.pop("ci_method")
        state.accuracy["int8_detail"] = detail
        title = f"{cfg.arch} int8 on {len(data.ds.y_test):,} test images: {result['top1']:.1%}"
        return {"warnings": thin_class_warnings(detail),
                "files": {"confusion_png": ("confusion.png", confusion_png(detail, title))}}

    def check_kept(self, accuracy: dict, data: Data) -> None:
        from mobilekit.pipeline.guards import check_kept_accuracy

        check_kept_accuracy(accuracy, data.ds.y_test, len(data.ds.class_names))

    def warnings(self, accuracy: dict, data: Data, evaluated: dict) -> list[str]:
        """Near-chance or much-lost int8 accuracy, then the per-class evaluation's warnings (thin classes)."""
        from mobilekit.pipeline.guards import accuracy_warnings

        return [*accuracy_warnings(accuracy, data.ds.y_test, len(data.ds.class_names)),
                *evaluated.get("warnings", [])]

    def report_fields(self, data: Data) -> dict:
        return {"classes": list(data.ds.class_names), "num_classes": len(data.ds.class_names),
                "preprocessing": data.ds.preprocessing()}

    def with_metadata(self, cfg, data: Data, content: bytes, kind: str) -> bytes:
        """``content`` (the ``kind`` file: int8, float) with image-classifier TFLite metadata (mobilekit.app_metadata):
        deterministic (the label file's zip date is fixed), so a build's bytes repeat."""
        from mobilekit.app_metadata import image_classifier

        names = data.ds.class_names
        what = f"{cfg.weights} weights" if cfg.imagenet_as_is else f"{len(names)} classes of {data.ds.name}"
        return image_classifier(content, name=cfg.arch,
                                description=f"{cfg.arch} image classifier ({kind}), {what}; built by mobilekit",
                                preprocessing=data.ds.preprocessing(), labels=list(names))

    def app_files(self, data: Data) -> dict[str, tuple[str, bytes]]:
        """labels.txt: one class name per line, in output order (what Task Library and the demo app read)."""
        return {"labels": ("labels.txt", "".join(f"{c}\n" for c in data.ds.class_names).encode("utf-8"))}
