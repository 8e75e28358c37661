"""Real aarch64 LiteRT/XNNPACK kernels under qemu user-mode emulation, with instruction counts.

``mobilekit emulate setup`` builds the cached root (:mod:`mobilekit.emulate.root`);
:func:`count_instructions` runs a .tflite there at batch 1 and counts the guest
instructions of each ``invoke()`` (docs/arm-emulation.md).
"""

from mobilekit.emulate.count import count_instructions
from mobilekit.emulate.root import CPUS, check_cpu, setup, status

__all__ = ["CPUS", "check_cpu", "count_instructions", "setup", "status"]
