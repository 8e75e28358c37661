"""Tasks: what depends on what a model predicts, behind one small interface chosen by the arch.

The build (mobilekit.pipeline) trains, prunes, quantizes, converts, checks and measures every model the same
way; the parts that differ between image classification and the tasks to come (object detection) go through
the arch's :class:`Task`:

=================  ============================================================================================
``load``           the dataset reader: a :class:`Data` (the dataset, its float test images)
``create_model``   the arch with the task's head, sized for the data
``loss``           the training loss, the metrics Keras logs, whether labels go one-hot
``train_dataset``  the training batches of a stage (augmentation included)
``labels``         a batch of training labels as the model's outputs take them
``keras_metric``   the task's metric of a Keras model on the test set (the report's ``keras_*`` numbers)
``evaluate``       the int8 file on the test set with the task's post-processing: its metric into the
                   accuracy record, the report detail, warnings and files (a confusion matrix)
``check_kept``     refuse a build whose int8 file lost most of what the float model learned
``warnings``       what the metrics say the user should know
``report_fields``  the report's task fields (classes, preprocessing)
``app_files``      what an app needs beside the .tflite (labels.txt)
``with_metadata``  a written .tflite with the TFLite metadata app runtimes read (name, normalisation, labels)
=================  ============================================================================================

An arch names its task when it registers (``@register(task="detection")``; ``classification`` when it says
nothing); :func:`of` returns it. A new task is a module here implementing :class:`Task`, added to :func:`_tasks`.
"""

from __future__ import annotations

import functools

from mobilekit.errors import MobilekitError
from mobilekit.tasks.base import Data, Task

__all__ = ["Data", "Task", "names", "of"]


@functools.lru_cache(maxsize=None)
def _tasks() -> dict[str, Task]:
    from mobilekit.tasks.classification import Classification
    from mobilekit.tasks.detection import Detection

    return {"classification": Classification(), "detection": Detection()}


def names() -> list[str]:
    return list(_tasks())


def of(arch: str) -> Task:
    """The task of ``arch`` (a registered arch name or alias).

    Raises:
        MobilekitError: an arch whose task is not one of :func:`names`.
    """
    from mobilekit.archs import task_of

    task = task_of(arch)
    tasks = _tasks()
    if task not in tasks:
        raise MobilekitError(f"arch {arch!r} is a {task!r} model; mobilekit builds {', '.join(tasks)} models")
    return tasks[task]
