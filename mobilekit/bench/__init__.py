"""Running .tflite files in the LiteRT interpreter: accuracy and batch-1 latency."""

from mobilekit.bench.runner import evaluate_tflite, measure_latency, make_interpreter, quantize_input

__all__ = ["evaluate_tflite", "measure_latency", "make_interpreter", "quantize_input"]
