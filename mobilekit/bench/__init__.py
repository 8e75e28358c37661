"""Running .tflite files in the LiteRT interpreter: accuracy and batch-1 latency."""

from mobilekit.bench.runner import (delegate_partitions, evaluate_tflite, make_interpreter,
                                    measure_latency, quantize_input)

__all__ = ["delegate_partitions", "evaluate_tflite", "measure_latency", "make_interpreter", "quantize_input"]
