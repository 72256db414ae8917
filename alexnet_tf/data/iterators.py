"""Iterating a dataset without paying for its iterator's teardown on the main thread.

Deleting a tf.data iterator whose pipeline is autotuned (ours, and the one Keras builds
for `model.fit`) sometimes blocks for as long as the iterator lived, up to about a
minute: the deletion waits for the autotuning thread's next scheduled pass, whose
period doubles from 10 ms to a cap of 60 s, and the wake-up it is sent is not always
seen. It is TensorFlow's own behaviour (2.21) and comes and goes from one iterator to
the next, which is what made a short `model.fit` look bimodal. Nothing runs
in the meantime, so a run ending an epoch lost those seconds, and a stopped run exited
late. `torn_down_in_background` hands the finished iterator to a thread that drops it,
and the main thread goes on at once.
"""

import sys
import threading


def torn_down_in_background(dataset):
    """Yields the elements of `dataset` (a `tf.data.Dataset` or a distributed one); when
    they end, or the generator is closed or dropped, the dataset's iterator is deleted
    on a background thread."""
    box = [iter(dataset)]
    try:
        yield from box[0]
    finally:
        drop_in_background(box)


def drop_in_background(box):
    """Empties the list `box` on another thread: if it holds the last reference to an
    iterator, its deletion runs there. Not a daemon thread: Python ends daemon threads
    mid-call at exit, and one inside TF's deletion then aborts the process. While the
    interpreter shuts down (a generator left open, collected at exit), in place."""
    if sys.is_finalizing():  # a thread started now never runs, and its start never returns
        box.clear()
        return
    threading.Thread(target=box.clear, name="tf.data iterator teardown").start()
