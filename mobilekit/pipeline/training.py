"""Training helpers shared by the stages: the input pipeline, step counts, one fit, Keras accuracy."""

from __future__ import annotations

import numpy as np

from mobilekit._tf import keras, tf


def train_dataset(x, y, cfg, seed_offset: int):
    """Shuffled, repeated, batched uint8 images -> ``pixel * SCALE + OFFSET`` (the build's preprocessing)."""
    from mobilekit.data import OFFSET, SCALE

    def prep(images, labels):
        images = tf.cast(images, tf.float32) * SCALE + OFFSET
        if cfg.augment:
            images = tf.image.random_flip_left_right(images, seed=cfg.seed + seed_offset)
        return images, labels

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(x), seed=cfg.seed + seed_offset, reshuffle_each_iteration=True).repeat()
    return ds.batch(cfg.batch_size, drop_remainder=True).map(prep).prefetch(2)


def steps(cfg, num_images: int, epochs: float) -> int:
    """Optimizer steps for ``epochs`` passes (fractions allowed) over ``num_images``."""
    return max(1, int(round(epochs * max(1, num_images // cfg.batch_size))))


def fit(model, x, y, cfg, epochs: float, lr: float, title: str, callbacks=(), seed_offset: int = 0) -> None:
    """Train ``epochs`` passes with a cosine-decayed ``lr`` and a progress bar."""
    n = steps(cfg, len(x), epochs)
    schedule = keras.optimizers.schedules.CosineDecay(lr, n)
    optimizer = (keras.optimizers.Adam(schedule) if cfg.optimizer == "adam"
                 else keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True))
    model.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(train_dataset(x, y, cfg, seed_offset), epochs=1, steps_per_epoch=n, verbose=0,
              callbacks=[ProgressCallback(title, n), *callbacks])


def keras_accuracy(model, x_float, y) -> float:
    """Top-1 accuracy of a Keras model on float inputs."""
    probs = model.predict(x_float, batch_size=500, verbose=0)
    return float(np.mean(np.argmax(probs, axis=-1) == y))


class ProgressCallback(keras.callbacks.Callback):
    """One progress bar over all training steps, showing running loss and accuracy."""

    def __init__(self, description: str, total_steps: int):
        super().__init__()
        self.description = description
        self.total_steps = total_steps
        self._progress = None
        self._task = None

    def on_train_begin(self, logs=None):
        from mobilekit import progress  # its console may be redirected (progress.use_console)

        self._progress = progress.progress()
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=self.total_steps, info="")

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        info = " ".join(f"{k}={v:.3f}" for k, v in logs.items() if k in ("loss", "accuracy"))
        self._progress.update(self._task, advance=1, info=info)

    def on_train_end(self, logs=None):
        self._progress.stop()
