"""Training's input through TF's tf.data service: a dispatcher and two workers in this
process on 127.0.0.1, tiny images. The local pipeline (tests/test_input_pipeline.py holds
it to NumPy) is the reference for what an epoch holds."""

import dataclasses
import faulthandler
import json
import logging
import os
import socket
import threading

import numpy as np
import pytest
import tensorflow as tf
from imagefiles import encode, image_folder, pattern, write

from alexnet_tf import data_service
from alexnet_tf.bench import __main__ as bench
from alexnet_tf.config import Config, DataConfig, TrainConfig
from alexnet_tf.data import pipeline, service, statistics
from alexnet_tf.data.inputs import prepare_inputs
from alexnet_tf.data.layouts import load_source
from alexnet_tf.errors import UserError
from alexnet_tf.training import loop, run

S, R = 16, 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """`(address, workers)`: a dispatcher and two workers, kept for the module."""
    dispatcher = service.start_dispatcher(free_port())
    address = f"127.0.0.1:{dispatcher._address.split(':')[1]}"
    ports = [free_port(), free_port()]
    workers = [service.start_worker(address, port, "127.0.0.1") for port in ports]
    yield f"grpc://{address}", workers, ports
    for worker in workers:
        worker._stop()
    dispatcher._stop()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """11 train images in 3 classes; each label replaced by the file's index."""
    tmp = tmp_path_factory.mktemp("service")
    root = image_folder(tmp / "d", splits={"train": 4, "val": 2}, size=(24, 30))
    os.remove(os.path.join(root, "train", "cat", "cat_3.jpg"))  # 11: a partial last batch
    cfg = DataConfig(dataset="folder", data_dir=root, image_size=S, resize=R, seed=7)
    inputs = prepare_inputs(cfg, str(tmp / "run"))
    train = inputs.train
    indexed = dataclasses.replace(train, labels=np.arange(train.num_examples, dtype=np.int32))
    return cfg, inputs, indexed, root


def by_example(dataset):
    """{example index: image} and the batch sizes, from `(images, labels)` batches whose
    labels are the examples' indices; an index seen twice fails."""
    images, sizes = {}, []
    for x, y in dataset:
        sizes.append(len(y))
        for image, index in zip(x.numpy(), y.numpy(), strict=True):
            assert int(index) not in images, f"example {index} came twice"
            images[int(index)] = image
    return images, sizes


def run_with_timeout(fn, seconds=60):
    """fn() in a thread; fails instead of hanging the suite."""
    out = {}

    def call():
        try:
            out["value"] = fn()
        except BaseException as error:  # raised again in the test's thread
            out["error"] = error

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"no answer from the tf.data service in {seconds} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_an_epoch_through_the_service_is_the_local_epoch(cluster, data):
    address = cluster[0]
    cfg, inputs, indexed, _ = data
    kw = {"batch_size": 4, "stats": inputs.stats, "epoch": 3}
    local, local_sizes = by_example(pipeline.build_dataset(cfg, indexed, training=True, **kw))
    remote, sizes = run_with_timeout(
        lambda: by_example(service.service_dataset(cfg, indexed, address=address, **kw))
    )
    assert sorted(remote) == sorted(local) == list(range(11))  # each image once
    for index, image in local.items():  # the same crop, flip and lighting, bit for bit
        np.testing.assert_array_equal(remote[index], image)
    assert sorted(sizes) == sorted(local_sizes) == [3, 4, 4]


def test_device_augmentation_gets_the_local_uint8_crops_through_the_service(cluster, data):
    address = cluster[0]
    cfg, inputs, indexed, _ = data
    cfg = dataclasses.replace(cfg, augment_on="device")
    kw = {"batch_size": 4, "stats": inputs.stats, "epoch": 2}

    def crops(dataset):  # {example index: uint8 crop}; the labels are the indices here
        out = {}
        for (images, index), labels in dataset:
            assert images.dtype == tf.uint8 and images.shape[1:] == (S, S, 3)
            np.testing.assert_array_equal(index, labels)
            out.update(zip(index.numpy().tolist(), images.numpy(), strict=True))
        return out

    local = crops(pipeline.build_dataset(cfg, indexed, training=True, **kw))
    remote = run_with_timeout(
        lambda: crops(service.service_dataset(cfg, indexed, address=address, **kw))
    )
    assert sorted(remote) == sorted(local) == list(range(11))
    for index, image in local.items():
        np.testing.assert_array_equal(remote[index], image)


def test_a_resumed_epoch_is_the_plans_tail(cluster, data):
    address = cluster[0]
    cfg, inputs, indexed, _ = data
    kw = {"batch_size": 4, "stats": inputs.stats, "epoch": 1, "skip_batches": 1}
    local, _ = by_example(pipeline.build_dataset(cfg, indexed, training=True, **kw))
    remote, _ = run_with_timeout(
        lambda: by_example(service.service_dataset(cfg, indexed, address=address, **kw))
    )
    assert sorted(remote) == sorted(local) and len(local) == 7


def test_two_trainers_share_the_service_and_split_the_epoch(cluster, data):
    address = cluster[0]
    cfg, inputs, indexed, _ = data
    seen = []
    for i in range(2):
        context = tf.distribute.InputContext(2, i, 2)
        kw = {"batch_size": 4, "stats": inputs.stats, "input_context": context}
        local, _ = by_example(pipeline.build_dataset(cfg, indexed, training=True, **kw))
        remote, sizes = run_with_timeout(
            lambda kw=kw: by_example(service.service_dataset(cfg, indexed, address=address, **kw))
        )
        assert sorted(remote) == sorted(local)
        assert len(sizes) == service.planned_batches(indexed, 4, context) == 3
        seen += list(remote)
    assert sorted(set(seen)) == list(range(11))  # 12 = 11 and the padding's one repeat


def test_a_file_a_worker_cannot_decode_is_left_out_and_named(cluster, tmp_path):
    address = cluster[0]
    root = image_folder(tmp_path / "d", per_class=2, size=(24, 30))
    good = encode(pattern(24, 30))
    broken = [
        write(os.path.join(root, "train", "cat", "truncated.jpg"), good[: len(good) // 2]),
        write(os.path.join(root, "train", "bee", "text.jpg"), b"<html>404 not found</html>"),
    ]
    cfg = DataConfig(dataset="folder", data_dir=root, image_size=S, resize=R, check_files="off")
    source = dataclasses.replace(load_source(cfg, "train"), report_dir=str(tmp_path / "run"))
    indexed = dataclasses.replace(source, labels=np.arange(source.num_examples, dtype=np.int32))
    stats = statistics.compute_stats(source.subset(~np.isin(source.paths, broken)), resize=R)
    dataset = service.service_dataset(cfg, indexed, address=address, batch_size=3, stats=stats)
    seen, _ = run_with_timeout(lambda: by_example(dataset))
    assert sorted(indexed.paths[list(seen)]) == sorted(set(source.paths) - set(broken))
    with open(tmp_path / "run" / "bad_files_train.json") as f:
        assert sorted(d["path"] for d in json.load(f)["dropped"]) == sorted(broken)


def test_a_worker_stopped_mid_epoch_loses_its_batches_and_the_rest_arrive(cluster, data):
    """TF's DYNAMIC sharding is at most once: a worker that stops loses the batches it
    was making, the other keeps serving, and the epoch ends once a worker is back at the
    stopped one's address. No image comes twice."""
    address, workers, ports = cluster
    cfg, inputs, indexed, _ = data
    big = dataclasses.replace(  # 88 examples, one a batch: long enough to stop one midway
        indexed,
        paths=np.tile(indexed.paths, 8),
        labels=np.arange(88, dtype=np.int32),
        num_examples=88,
    )
    dataset = service.service_dataset(cfg, big, address=address, batch_size=1, stats=inputs.stats)

    def read():
        seen, iterator = [], iter(dataset)
        for batch in iterator:
            seen.append(int(batch[1][0]))
            if len(seen) == 10:
                workers[1]._stop()
                workers[1] = service.start_worker(address[7:], ports[1], "127.0.0.1")
        return seen

    seen = run_with_timeout(read, 90)
    assert len(seen) == len(set(seen)), "an example came twice"
    lost = sorted(set(range(88)) - set(seen))
    assert len(lost) < 44, lost  # only what the stopped worker held


def train_through(address, root, model_dir, epochs, batch_size, steps):
    """A tiny one_device training run whose batches come from the service at `address`."""
    cfg = Config(
        data=DataConfig(dataset="folder", data_dir=root, image_size=67, resize=76, stats_images=0),
        train=TrainConfig(
            model_dir=str(model_dir),
            epochs=epochs,
            batch_size=batch_size,
            steps_per_epoch=steps,
            progress_seconds=60.0,
            strategy="one_device",
            data_service=address,
            val_steps=1,
        ),
    )
    # The loop sets signal handlers, so it runs in this thread; a hang ends the session.
    faulthandler.dump_traceback_later(240, exit=True)
    try:
        return loop.train_and_evaluate(cfg)
    finally:
        faulthandler.cancel_dump_traceback_later()


def test_training_through_the_service(cluster, data, tmp_path, monkeypatch):
    address = cluster[0]
    calls = []

    def through_the_service(*args, **kwargs):
        calls.append(kwargs["address"])
        return service.service_dataset(*args, **kwargs)

    monkeypatch.setattr(run, "service_dataset", through_the_service)
    _, _, _, root = data
    result = train_through(address, root, tmp_path / "run", epochs=1, batch_size=4, steps=2)
    assert result["count"] == 4
    assert calls == [address]  # the epoch's batches came from the service
    reader = tf.train.load_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert int(reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE")) == 2


def test_an_epoch_the_service_delivers_short_ends_with_a_warning_and_the_next_is_whole(
    cluster, data, tmp_path, monkeypatch, caplog
):
    """What training sees when a worker dies: the service's stream of the epoch ends
    early (the dead worker's batches are lost, the test above). The run warns, validates,
    and trains the next epoch whole, instead of stopping as a local split that runs out
    does (exit 4)."""
    address = cluster[0]
    epochs = []

    def first_epoch_short(*args, **kwargs):
        epochs.append(len(epochs))
        dataset = service.service_dataset(*args, **kwargs)
        return dataset.take(1) if len(epochs) == 1 else dataset  # one batch of epoch 1 only

    monkeypatch.setattr(run, "service_dataset", first_epoch_short)
    _, _, _, root = data
    with caplog.at_level(logging.WARNING):
        train_through(address, root, tmp_path / "run", epochs=2, batch_size=2, steps=3)
    assert "delivered 1 of the 3 steps of epoch 1" in caplog.text
    assert epochs == [0, 1]
    reader = tf.train.load_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert int(reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE")) == 1 + 3
    with open(tmp_path / "run" / "history.json") as f:
        assert [row["epoch"] for row in json.load(f)] == [1, 2]


def test_bench_e2e_takes_its_batches_from_the_service(cluster, data, capsys):
    address = cluster[0]
    root = data[3]
    flags = ["--data_dir", root, "--batch_size", "2", "--image_size", "67", "--resize", "72"]
    timing = ["--warmup", "1", "--steps", "1", "--windows", "1", "--json"]
    code = run_with_timeout(lambda: bench.main(["e2e", *flags, *timing, "--data_service", address]))
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["data_service"] == address and result["input_images_per_sec"] > 0


def test_a_tfrecord_source_and_a_bad_address_are_one_line_errors(data):
    cfg, inputs, indexed, _ = data
    records = dataclasses.replace(indexed, kind="records")
    with pytest.raises(UserError, match="--data_service reads image folders"):
        service.service_dataset(
            cfg, records, address="grpc://h:1", batch_size=4, stats=inputs.stats
        )
    with pytest.raises(UserError, match=r"^--data_service h:1 is not grpc://HOST:PORT$"):
        service.check_address("h:1")


@pytest.mark.parametrize(
    "args, message",
    [
        (["dispatcher"], "error: --port None is not a port number (1-65535)"),
        (["worker", "--port", "5"], "error: worker needs --dispatcher HOST:PORT"),
        (["both", "--port", "5"], "error: give one role, dispatcher or worker; got 'both'"),
    ],
)
def test_the_commands_mistakes_are_one_line_and_status_2(args, message, capsys):
    assert data_service.main(args) == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]


def test_a_port_in_use_is_one_line_and_status_2(capsys):
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        assert data_service.main(["dispatcher", "--port", port]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: --port {port}: Could not start gRPC server (is the port in use?)"
    ]
