"""Knowledge distillation (Hinton et al. 2015): the student learns from hard labels and a teacher.

    loss = alpha * CE(y, student) + (1 - alpha) * T^2 * KL(soft(teacher, T) || soft(student, T))

``soft(p, T) = softmax(log(p) / T)``: the builders end in a softmax, and log-probabilities
differ from logits by a per-example constant, which softmax ignores, so this is the usual
temperature-softened distribution. T^2 keeps the soft term's gradients on the hard term's scale.
"""

from __future__ import annotations

import math

from mobilekit.backend import keras, tf
from mobilekit.errors import MobilekitError


def check_distill(alpha: float, temperature: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise MobilekitError(f"distill_alpha must be in [0, 1]; received distill_alpha={alpha!r}")
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature)
            or temperature <= 0):
        raise MobilekitError(f"temperature must be a positive number; received temperature={temperature!r}")


class Distiller(keras.Model):
    """Trains ``student`` against a frozen ``teacher``; ``fit`` it like any Keras model.

    Example: ``d = Distiller(student, teacher, alpha=0.5, temperature=4); d.compile(opt, metrics=["accuracy"])``.
    """

    def __init__(self, student, teacher, alpha: float = 0.5, temperature: float = 4.0):
        super().__init__()
        check_distill(alpha, temperature)
        if tuple(student.output_shape) != tuple(teacher.output_shape):
            raise MobilekitError(f"teacher outputs {teacher.output_shape}, the student {student.output_shape}")
        self.student, self.teacher = student, teacher
        self.teacher.trainable = False
        self.alpha, self.temperature = float(alpha), float(temperature)
        # Per-example losses averaged over the global batch (tf.nn.compute_average_loss): under a distribution
        # strategy (data-parallel workers) each replica's share is scaled so the summed gradients are the global
        # batch's mean, as Keras' own training step does; alone, the same batch mean as before.
        none = keras.losses.Reduction.NONE
        self._ce = keras.losses.SparseCategoricalCrossentropy(reduction=none)
        self._kl = keras.losses.KLDivergence(reduction=none)
        self._loss = keras.metrics.Mean(name="loss")  # the running mean of the fit's losses, as Keras logs it

    def call(self, x, training=False):
        return self.student(x, training=training)

    def _soft(self, p):
        return tf.nn.softmax(tf.math.log(tf.maximum(p, 1e-12)) / self.temperature)

    def train_step(self, data):
        x, y = data
        teacher = self.teacher(x, training=False)
        with tf.GradientTape() as tape:
            student = self.student(x, training=True)
            hard = tf.nn.compute_average_loss(self._ce(y, student))
            soft = tf.nn.compute_average_loss(self._kl(self._soft(teacher), self._soft(student)))
            soft = soft * self.temperature ** 2
            loss = self.alpha * hard + (1 - self.alpha) * soft
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self._loss.update_state(loss * tf.distribute.get_strategy().num_replicas_in_sync)  # this replica's mean
        self.compiled_metrics.update_state(y, student)
        return {m.name: m.result() for m in self.metrics}
