"""What tfmot exchanges between the replicas every step that a data-parallel worker need not (``--workers``).

Under ``MultiWorkerMirroredStrategy`` each cross-replica exchange is a collective over gRPC, and the ones below sit
in the middle of a step's forward pass, one after another: each pays the network's latency while the worker waits.
Counted in the traced training step of SqueezeNet 1.1: a plain step had 8 collectives (2 since the workers read
their logs from their own replica), a pruning step 34 (one more per pruned layer), a QAT step 46 (two more per
activation quantizer). On two one-CPU nodes they made a pruning step 1.5 times and a QAT step 1.3 times as long as
without them. :func:`install` changes two of tfmot's updates in the worker's process (never in a one-process build):

- **Pruning: the mask applied in place.** tfmot's pruning wrapper writes ``kernel * mask`` back every step through an
  all-reduce MEAN of that product over the replicas (``Pruning._weight_assign_objs``: one collective per pruned layer
  per step). The kernels are mirrored (every replica applies the same all-reduced gradients) and the masks are set in
  cross-replica context from the same values, so every replica's product is already the same: each replica now
  assigns its own. Same values, without the exchange (the MEAN of equal floats gives them back, for 2 replicas
  exactly; for 3 or more its sum could round in the last bit, which the in-place assign does not).
- **QAT: activation ranges kept per replica, averaged at the end of the fit.** tfmot updates every quantizer's range
  as a moving average of the batch's min and max, which ``assign_moving_average`` averages over the replicas before
  the fake-quant that follows it (two scalar collectives per quantizer, one quantizer after another). Each replica
  now keeps its own moving average during the fit, and :func:`average_ranges` replaces them with their mean at the
  end (one collective). A moving average is linear in what it averages, so the mean of the replicas' averages is the
  moving average of the replicas' mean batch range: what tfmot keeps. What differs is only that a replica's
  fake-quant during the fit uses its own range. QAT is judged by the int8 file's accuracy, as before.

Once per fit, :func:`local_rebuild` spares the strategy's exchanges while a worker makes the fit's model again (first
values broadcast from rank 0, BatchNormalization statistics averaged on every read), whose values that model's
``set_weights`` gives every worker anyway.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable

RANGE_UPDATES = ("AssignMinEma", "AssignMaxEma")  # the names tfmot's MovingAvgQuantize gives its two range updates

_RANGES: dict[int, object] = {}  # the range variables the traced QAT step updated, by id (average_ranges)


def install() -> Callable[[], None]:
    """Both changes, for this process; returns the call that undoes them (the tests')."""
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_impl

    from mobilekit.backend import tf

    train = tf.__internal__.train
    before = pruning_impl.Pruning._weight_assign_objs, train.assign_moving_average
    pruning_impl.Pruning._weight_assign_objs = _mask_in_place
    train.assign_moving_average = _local_moving_average(before[1])

    def undo() -> None:
        pruning_impl.Pruning._weight_assign_objs, train.assign_moving_average = before

    return undo


def _mask_in_place(pruning) -> list:
    """``kernel <- kernel * mask`` for each of ``pruning``'s layers: in a replica context each replica assigns its own
    product (tfmot's ``_weight_assign_objs`` without its all-reduce)."""
    from mobilekit.backend import tf

    pairs = [(tf.dtypes.cast(tf.math.multiply(w, m), dtype=w.dtype), w) for w, m, _ in pruning._pruning_vars]
    context = tf.distribute.get_replica_context()
    if not pairs:
        return []
    if context is None:
        return [w.assign(value) for value, w in pairs]

    def update(distribution, pairs):
        return tf.group([distribution.extended.update(w, lambda var, value: var.assign(value), args=(value,))
                         for value, w in pairs])

    return [context.merge_call(update, args=(pairs,))]


def _local_moving_average(original):
    """``assign_moving_average`` that, for tfmot's range updates in a replica context, updates the replica's own
    copy (the same arithmetic as TensorFlow's, without its cross-replica mean); anything else goes to ``original``."""
    from mobilekit.backend import tf

    def assign_moving_average(variable, value, decay, zero_debias=True, name=None):
        if name not in RANGE_UPDATES or zero_debias or not tf.distribute.has_strategy() \
                or tf.distribute.in_cross_replica_context():
            return original(variable, value, decay, zero_debias=zero_debias, name=name)
        _RANGES[id(variable)] = variable
        with tf.name_scope(name):
            rate = tf.convert_to_tensor(1.0 - decay, dtype=variable.dtype.base_dtype)
            return variable.assign_sub((variable - value) * rate)

    return assign_moving_average


def forget_ranges() -> None:
    """Before a fit: the ranges of earlier fits' models are not this one's."""
    _RANGES.clear()


def average_ranges(strategy, model) -> int:
    """Every replica's QAT ranges in ``model`` replaced by their mean over the replicas (one all-reduce, run by every
    worker at the end of a fit); how many variables."""
    from mobilekit.backend import tf

    mine = {id(v) for v in model.variables}
    ranges = [v for key, v in _RANGES.items() if key in mine]
    if ranges:
        @tf.function
        def average():
            def replica():
                means = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.MEAN,
                                                                       [v.read_value() for v in ranges])
                return [v.assign(m) for v, m in zip(ranges, means)]

            strategy.run(replica)

        average()
    return len(ranges)


@contextlib.contextmanager
def local_rebuild(strategy):
    """A fit's model made again on a worker (``parallel.rebuild``, compiled, its optimizer built) without
    ``MultiWorkerMirroredStrategy``'s collectives: each one is an eager exchange with the other workers, one after
    another. Rebuilding SqueezeNet 1.1 made about 250 (its QAT model far more), at a few ms each on one-CPU nodes:

    - **First values.** Each new variable took rank 0's first value by a broadcast. Inside, each worker takes its
      own, as one ``MirroredStrategy`` does. Every variable made here either starts the same on every worker (the
      optimizer's zeros, pruning's masks, the loss tracker) or is overwritten at once with the same values on every
      worker (``set_weights`` from what travelled).
    - **Reads of BatchNormalization's moving statistics** (mirrored on read, aggregated by MEAN): each read in
      cross-replica context averaged them over the workers: while Keras rebuilt the graph, and after every
      ``assign`` of ``set_weights``. Inside, a read returns this worker's value. The values are the same on every
      worker here (the same first values, then the same ``set_weights``), so their mean is that value; only the
      read is skipped, not what is stored.

    The fit's end compares every replica's weights (``digest``), and reads the statistics across the workers again.
    """
    from tensorflow.python.distribute import collective_all_reduce_strategy, mirrored_strategy, values
    from tensorflow.python.ops import variable_scope

    extended = strategy.extended
    if not isinstance(extended, collective_all_reduce_strategy.CollectiveAllReduceExtended):
        yield
        return
    cross_replica = values.SyncOnReadVariable._get_cross_replica

    def local_mean(variable):
        if variable.aggregation == variable_scope.VariableAggregation.MEAN:
            return variable._get_on_device_or_primary().value()
        return cross_replica(variable)

    extended._get_variable_creator_initial_value = functools.partial(
        mirrored_strategy.MirroredExtended._get_variable_creator_initial_value, extended)
    values.SyncOnReadVariable._get_cross_replica = local_mean
    try:
        yield
    finally:
        del extended._get_variable_creator_initial_value  # the class's method again
        values.SyncOnReadVariable._get_cross_replica = cross_replica
