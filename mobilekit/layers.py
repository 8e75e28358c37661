"""Custom Keras layers the builders need, each QAT- and int8-conversion-ready.

Importing this module imports tf_keras; builders import it only when called.
"""

from __future__ import annotations

from mobilekit._tf import keras, tf


@keras.saving.register_keras_serializable(package="mobilekit")
class ChannelSplit(keras.layers.Layer):
    """Split the channel axis into ``parts`` equal tensors (ShuffleNet v2's channel split).

    One ``tf.split`` converts to a single TFLite SPLIT op, which XNNPACK delegates
    for int8; slicing (``x[..., :c]``) would give STRIDED_SLICE ops instead. The
    layer has no weights: pruning skips it and QAT passes quantized inputs through
    (see ``mobilekit.optimize.qat``).

    Example: ``left, right = ChannelSplit(name="split")(x)``.
    """

    def __init__(self, parts: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.parts = int(parts)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.parts:
            raise ValueError(f"{self.name}: {channels} channels do not split into {self.parts} equal parts")
        super().build(input_shape)

    def call(self, inputs):
        return tf.split(inputs, self.parts, axis=-1)

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        shape[-1] //= self.parts
        return [tf.TensorShape(shape)] * self.parts

    def get_prunable_weights(self):
        return []

    def get_config(self):
        return {**super().get_config(), "parts": self.parts}


# Layers QAT must be told how to quantize (see ``mobilekit.optimize.qat``).
PASS_THROUGH_LAYERS = (ChannelSplit,)
