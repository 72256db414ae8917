"""A finished dataset iterator is deleted on a background thread, never the main one.

Deleting an autotuned tf.data iterator can block for as long as the iterator lived
(`alexnet_tf/data/iterators.py`), so training's epochs and evaluation's passes hand
theirs to a thread. Checked on real autotuned pipelines: a finaliser on the iterator
records the thread its deletion ran on.
"""

import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import tensorflow as tf

from alexnet_tf.data.iterators import torn_down_in_background

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Recorded:
    """A dataset whose iterators note the thread that deletes them."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.deleted_on = []

    def __iter__(self):
        iterator = iter(self.dataset)
        weakref.finalize(iterator, lambda: self.deleted_on.append(threading.current_thread()))
        return iterator

    def wait_deleted(self):
        deadline = time.monotonic() + 120  # a deletion may wait for autotuning's next pass
        while not self.deleted_on and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.deleted_on) == 1
        return self.deleted_on[0]


def autotuned():
    return Recorded(
        tf.data.Dataset.range(20)
        .map(lambda i: tf.fill([8, 8], i), num_parallel_calls=tf.data.AUTOTUNE)
        .batch(4)
        .prefetch(tf.data.AUTOTUNE)
    )


def test_an_iterator_run_to_its_end_is_deleted_off_the_main_thread():
    data = autotuned()
    assert [int(b[0, 0, 0]) for b in torn_down_in_background(data)] == [0, 4, 8, 12, 16]
    assert data.wait_deleted() is not threading.main_thread()


def test_an_iterator_left_early_is_deleted_off_the_main_thread():
    data = autotuned()
    for i, _ in enumerate(torn_down_in_background(data)):
        if i == 1:
            break
    assert data.wait_deleted() is not threading.main_thread()


def test_a_distributed_iterator_is_deleted_off_the_main_thread():
    strategy = tf.distribute.MirroredStrategy(["/CPU:0", "/CPU:1"])
    data = autotuned()
    dist = strategy.distribute_datasets_from_function(lambda _: data.dataset)

    recorded = Recorded(dist)
    assert len(list(torn_down_in_background(recorded))) > 0
    assert recorded.wait_deleted() is not threading.main_thread()


def test_a_process_that_exits_with_an_iterator_still_open_ends():
    # Collected while the interpreter shuts down, the generator's teardown cannot start a
    # thread (Python 3.11 would wait for it forever): it is done in place, and the
    # process ends.
    script = textwrap.dedent(
        """\
        import tensorflow as tf
        from alexnet_tf.data.iterators import torn_down_in_background

        data = tf.data.Dataset.range(100).map(lambda i: i + 1, num_parallel_calls=-1)
        batches = torn_down_in_background(data.prefetch(-1))
        cycle = [batches]
        cycle.append(cycle)  # only the collector at exit frees it
        print(int(next(batches)), flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
