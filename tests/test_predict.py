"""python -m alexnet_tf.predict: top classes of image files, with the run's class names."""

import glob
import json
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from tinyrun import CLASSES, trained_run

from alexnet_tf import build_alexnet, predict
from alexnet_tf.config import Config, EvalConfig
from alexnet_tf.evaluation import class_names, evaluate_run
from alexnet_tf.evaluation.predict import Predictor


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)


def val_files(run):
    return sorted(glob.glob(os.path.join(run.data_dir, "val", "*", "*.jpg")))


def test_prints_the_top_classes_with_probabilities_and_names(run, capsys):
    files = val_files(run)[:2]
    assert predict.main([*files, "--model_dir", run.model_dir, "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * 3 and lines[0] == files[0] and lines[3] == files[1]
    for line in lines[1:3] + lines[4:6]:
        rank, name, percent = line.split()
        assert rank in ("1.", "2.") and name in CLASSES and percent.endswith("%")
    first, second = (float(line.split()[-1][:-1]) for line in lines[1:3])
    assert first >= second


def test_ten_crop_probabilities_agree_with_evaluation(run):
    # Two code paths (the tf.data pipeline, the eager predictor) and one protocol:
    # evaluation's loss is the mean cross-entropy of the predictor's averaged softmax.
    predictor = Predictor.from_files(model_dir=run.model_dir)
    files = val_files(run)
    probs = predictor.probabilities(files, crops=10)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    labels = [CLASSES.index(os.path.basename(os.path.dirname(f))) for f in files]
    cfg = Config(data=run.config.data, eval=EvalConfig(model_dir=run.model_dir, crops=10))
    result = evaluate_run.evaluate(cfg)
    expected = -np.log(probs[np.arange(len(files)), labels]).mean()
    np.testing.assert_allclose(result["loss"], expected, rtol=1e-4)


def test_centre_crop_probabilities_equal_the_serving_signature(run):
    predictor = Predictor.from_files(model_dir=run.model_dir)
    files = val_files(run)
    top = predictor.top(files, k=3, crops=1)
    serve = tf.saved_model.load(os.path.join(run.model_dir, "saved_model"))
    served = serve.signatures["serving_default"](
        images=tf.constant([pathlib.Path(f).read_bytes() for f in files])
    )
    np.testing.assert_array_equal([[i for i, _ in t] for t in top], served["classes"].numpy())
    np.testing.assert_allclose(
        [[p for _, p in t] for t in top], served["probabilities"].numpy(), rtol=1e-5
    )


def test_imagenet_classes_show_wordnet_ids_and_readable_names(run, tmp_path, capsys):
    # A run whose classes are WordNet ids, with Kaggle's synset file in its folder.
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("model.keras", "input_stats.npz", "run.json"):
        os.symlink(os.path.join(run.model_dir, name), folder / name)
    wnids = class_names.tfds_wnids()[:3]  # TFDS's label list, offline
    (folder / "classes.json").write_text(json.dumps(wnids))
    (folder / "LOC_synset_mapping.txt").write_text(
        "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n"
        "n01484850 great white shark, white shark\n"
    )
    assert predict.main([val_files(run)[0], "--model_dir", str(folder), "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    shown = {line.split()[1]: " ".join(line.split()[2:-1]) for line in lines}
    assert shown == {
        "n01440764": "tench",
        "n01443537": "goldfish",
        "n01484850": "great white shark",
    }


def test_a_1000_class_model_without_classes_json_names_ilsvrc_wnids(run, tmp_path, capsys):
    # predict's own fallback: a 1000-class model whose run has no classes.json is named in
    # ILSVRC-2012's class-index order (sorted WordNet ids; written here, not read from
    # TFDS), and readable names come from a synset file beside the model.
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("input_stats.npz", "run.json"):
        os.symlink(os.path.join(run.model_dir, name), folder / name)
    build_alexnet(1000, run.config.data.image_size, seed=0).save(folder / "model.keras")
    (folder / "LOC_synset_mapping.txt").write_text(
        "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n"
        "n15075141 toilet tissue, toilet paper, bathroom tissue\n"
    )
    predictor = Predictor.from_files(model_dir=str(folder))
    names = predictor.class_names
    assert len(names) == 1000 and len(set(names)) == 1000 and list(names) == sorted(names)
    assert names[:2] == ("n01440764", "n01443537") and names[999] == "n15075141"
    assert all(class_names.is_wnid(n) for n in names)
    readable = predictor.readable
    assert (readable[0], readable[1], readable[999]) == ("tench", "goldfish", "toilet tissue")
    assert readable[2] == names[2]  # not in the file: keeps its id

    image = val_files(run)[0]
    probs = predictor.probabilities([image], crops=1)[0]
    assert predict.main([image, "--model_dir", str(folder), "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    shown = [line.split()[1] for line in lines]
    assert shown == [names[i] for i in np.argsort(-probs)[:3]]  # index -> wnid as above


@pytest.mark.parametrize(
    "contents, message",
    [
        (None, "does not exist"),
        (b"", "is not a readable image: empty file"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "truncated JPEG"),
        (b"\xff\xd8\xff\xe0" + b"\x13" * 64 + b"\xff\xd9", "cannot be decoded"),
    ],
    ids=["missing", "empty", "truncated", "undecodable"],
)
def test_an_unreadable_image_is_named_in_one_line(run, tmp_path, capsys, contents, message):
    path = tmp_path / "photo.jpg"
    if contents is not None:
        path.write_bytes(contents)
    good = val_files(run)[0]
    assert predict.main([good, str(path), "--model_dir", run.model_dir]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path} ") and message in err and "\n" not in err


def test_a_mistaken_model_flag_is_named(tmp_path, capsys):
    assert predict.main(["x.jpg", "--model_dir", str(tmp_path)]) == 2
    assert "has no model.keras" in capsys.readouterr().err
    assert predict.main(["x.jpg"]) == 2
    assert "give --model_dir" in capsys.readouterr().err
