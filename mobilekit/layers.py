"""Custom Keras layers the builders need, each QAT- and int8-conversion-ready.

Importing this module imports tf_keras; builders import it only when called.
"""

from __future__ import annotations

from mobilekit.backend import keras, tf


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


@keras.saving.register_keras_serializable(package="mobilekit")
class SpaceToDepth(keras.layers.Layer):
    """``tf.nn.space_to_depth``: each ``block x block`` patch becomes ``block**2 * C`` channels, in the
    order (row in the patch, column in the patch, channel). Converts to one SPACE_TO_DEPTH op.

    Used only by the export rewrite of a stride-2 stem (``mobilekit.rewrites``), never in a trained model.
    """

    def __init__(self, block: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.block = int(block)

    def call(self, inputs):
        return tf.nn.space_to_depth(inputs, self.block)

    def compute_output_shape(self, input_shape):
        n, h, w, c = tf.TensorShape(input_shape).as_list()
        b = self.block
        return tf.TensorShape([n, None if h is None else h // b, None if w is None else w // b, c * b * b])

    def get_config(self):
        return {**super().get_config(), "block": self.block}


@keras.saving.register_keras_serializable(package="mobilekit")
class ConstantBorder(keras.layers.Layer):
    """Pad with a per-channel constant: ``padding`` ((top, bottom), (left, right)) rows/columns of
    ``value[c]`` in channel c. Converts to CONCATENATION ops with constant inputs, which XNNPACK
    delegates (PAD/PADV2 take one value for every channel).

    Used only by the export rewrite that folds a per-channel normalisation into the first conv
    (``mobilekit.rewrites``): the border then holds the pixel value that normalises to 0.
    """

    def __init__(self, padding=((0, 0), (0, 0)), value=(0.0,), **kwargs):
        super().__init__(**kwargs)
        self.padding = tuple(tuple(int(p) for p in side) for side in padding)
        self.value = tuple(float(v) for v in value)

    def call(self, inputs):
        (top, bottom), (left, right) = self.padding
        value = tf.constant([[[self.value]]], inputs.dtype)  # (1, 1, 1, C)
        batch, height, width = tf.shape(inputs)[0], inputs.shape[1], inputs.shape[2]
        channels = len(self.value)

        def block(rows, cols):
            return tf.broadcast_to(value, tf.stack([batch, rows, cols, channels]))

        x = tf.concat([p for p in (block(top, width) if top else None, inputs,
                                   block(bottom, width) if bottom else None) if p is not None], axis=1)
        rows = height + top + bottom
        return tf.concat([p for p in (block(rows, left) if left else None, x,
                                      block(rows, right) if right else None) if p is not None], axis=2)

    def compute_output_shape(self, input_shape):
        n, h, w, c = tf.TensorShape(input_shape).as_list()
        (top, bottom), (left, right) = self.padding
        return tf.TensorShape([n, None if h is None else h + top + bottom, None if w is None else w + left + right, c])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "value": self.value}
