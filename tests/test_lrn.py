import keras
import numpy as np
import pytest
import tensorflow as tf
from optional import TORCH_MISSING

from alexnet_tf import LocalResponseNormalization
from alexnet_tf.model.lrn import PRESETS


def lrn_reference(a, k, alpha, beta, size, groups):
    """The paper's formula, neighbours clipped at the edges of each group."""
    a = a.astype("float64")
    channels = a.shape[-1]
    per_group = channels // groups
    out = np.empty_like(a)
    for c in range(channels):
        g0 = (c // per_group) * per_group
        lo, hi = max(g0, c - size // 2), min(g0 + per_group - 1, c + size // 2)
        energy = (a[..., lo : hi + 1] ** 2).sum(axis=-1)
        out[..., c] = a[..., c] / (k + alpha * energy) ** beta
    return out


def activations(channels=12, seed=0):
    # Large values (ReLU outputs of raw-pixel inputs) so that alpha matters.
    return np.random.RandomState(seed).uniform(0, 60, (2, 3, 4, channels)).astype("float32")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_matches_the_formula_eagerly_and_in_a_tf_function(preset):
    x = activations()
    expected = lrn_reference(x, *PRESETS[preset])
    layer = LocalResponseNormalization(preset)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(tf.function(layer)(tf.constant(x)).numpy(), expected, rtol=1e-5)


# Each preset's constants as published, written here rather than read from PRESETS:
# (k, alpha as published, is alpha divided by n, beta, n, maps summed per tower or across all)
PUBLISHED = {
    # The paper, Sec. 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75, alpha on the raw sum;
    # each GPU normalises its own maps.
    "paper": (2.0, 1e-4, False, 0.75, 5, "tower"),
    # cuda-convnet's layer params for rnorm1/rnorm2: size 5, scale 0.0001, pow 0.75, k 2;
    # the code divides scale by size; one normalisation per GPU's maps.
    "cuda-convnet": (2.0, 1e-4, True, 0.75, 5, "tower"),
    # Caffe's bvlc_alexnet deploy.prototxt norm1/norm2: local_size 5, alpha 0.0001, beta
    # 0.75, k 1; Caffe divides alpha by local_size and sums across all maps.
    "caffe": (1.0, 1e-4, True, 0.75, 5, "all"),
}


def published_reference(x, preset):
    """NumPy LRN from the published constants: window sum as a loop over channels."""
    k, alpha, divided, beta, n, scope = PUBLISHED[preset]
    scale = alpha / n if divided else alpha
    a = x.astype(np.float64)
    halves = np.split(a, 2, axis=-1) if scope == "tower" else [a]
    out = []
    for part in halves:
        squares = np.pad(part**2, [(0, 0)] * 3 + [(n // 2, n // 2)])
        window = sum(squares[..., i : i + part.shape[-1]] for i in range(n))
        out.append(part / (k + scale * window) ** beta)
    return np.concatenate(out, axis=-1)


@pytest.mark.parametrize("preset", sorted(PUBLISHED))
def test_each_preset_computes_its_published_constants(preset):
    x = activations(channels=16, seed=11)
    y = LocalResponseNormalization(preset)(x).numpy()
    np.testing.assert_allclose(y, published_reference(x, preset), rtol=1e-5)


def test_caffes_preset_equals_pytorchs_local_response_norm():
    # PyTorch's nn.LocalResponseNorm follows Caffe (alpha divided by size, across all maps):
    # an implementation outside this project, given Caffe's deploy.prototxt values.
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)
    x = activations(channels=16, seed=12)
    norm = torch.nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=1.0)
    expected = norm(torch.from_numpy(x).permute(0, 3, 1, 2).double()).permute(0, 2, 3, 1)
    y = LocalResponseNormalization("caffe")(x).numpy()
    np.testing.assert_allclose(y, expected.numpy(), rtol=1e-5)


def test_presets_differ_where_the_papers_conventions_differ():
    x = activations()
    paper, convnet, caffe = (
        LocalResponseNormalization(p)(x).numpy() for p in ("paper", "cuda-convnet", "caffe")
    )
    assert not np.allclose(paper, convnet)  # alpha / n
    assert not np.allclose(convnet, caffe)  # k and scope
    # Per tower: channel 5 (last of tower 0) does not see channel 6 (first of tower 1).
    y = x.copy()
    y[..., 6:] *= 3
    changed = LocalResponseNormalization("paper")(y).numpy()
    np.testing.assert_allclose(changed[..., :6], paper[..., :6], rtol=1e-6)
    assert not np.allclose(LocalResponseNormalization("caffe")(y).numpy()[..., 5], caffe[..., 5])


def test_explicit_constants_override_the_preset():
    x = activations()
    layer = LocalResponseNormalization(None, k=1.5, alpha=1e-3, beta=0.5, size=3, groups=3)
    np.testing.assert_allclose(layer(x).numpy(), lrn_reference(x, 1.5, 1e-3, 0.5, 3, 3), rtol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_computes_in_float32_under_mixed_precision(policy):
    x = activations()
    layer = LocalResponseNormalization("paper", dtype=policy)
    y = layer(x)
    assert y.dtype == keras.mixed_precision.Policy(policy).compute_dtype
    tolerance = 2e-2 if policy == "mixed_bfloat16" else 2e-3
    np.testing.assert_allclose(
        np.asarray(y, "float32"), lrn_reference(x, *PRESETS["paper"]), rtol=tolerance
    )


def test_round_trips_through_get_config_and_a_keras_file(tmp_path):
    layer = LocalResponseNormalization("cuda-convnet", beta=0.7, name="norm1")
    clone = LocalResponseNormalization.from_config(layer.get_config())
    assert (clone.k, clone.alpha, clone.beta, clone.size, clone.groups) == (2.0, 2e-5, 0.7, 5, 2)

    inputs = keras.Input((3, 4, 12))
    model = keras.Model(inputs, layer(inputs))
    path = tmp_path / "lrn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode on: the layer is registered
    x = activations()
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy())
    assert loaded.get_layer("norm1").beta == 0.7


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"preset": "x"}, "preset='x'"),
        ({"size": 4}, "size=4"),
        ({"groups": 0}, "groups=0"),
        ({"alpha": -1.0}, "alpha=-1.0"),
        ({"preset": None, "k": 1.0}, "alpha is required"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(kwargs, argument):
    with pytest.raises(ValueError, match=argument.replace("(", r"\(")):
        LocalResponseNormalization(**kwargs)


def test_channels_that_do_not_split_into_groups_are_rejected():
    with pytest.raises(ValueError, match="groups=2"):
        LocalResponseNormalization("paper")(np.zeros((1, 2, 2, 5), "float32"))


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("beta", [0.75, 0.5, 0.6])
def test_gradient_equals_tfs_own_lrn_gradient(preset, beta):
    from alexnet_tf.model.lrn import _tf_lrn, local_response_norm

    k, alpha, _, size, groups = PRESETS[preset]
    x = tf.constant(activations(seed=3))
    upstream = tf.constant(np.random.RandomState(4).normal(size=x.shape).astype("float32"))
    grads = []
    for fn in (local_response_norm, _tf_lrn):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x, k, alpha, beta, size, groups)
        grads.append(tape.gradient(y, x, output_gradients=upstream).numpy())
        np.testing.assert_allclose(
            y.numpy(), lrn_reference(x.numpy(), k, alpha, beta, size, groups), rtol=1e-5
        )
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6)
    assert np.abs(grads[0]).max() > 1e-3


def test_k_zero_falls_back_to_tfs_op():
    x = activations()
    layer = LocalResponseNormalization(None, k=0.0, alpha=1e-4, beta=0.75, size=5, groups=1)
    np.testing.assert_allclose(layer(x).numpy(), lrn_reference(x, 0.0, 1e-4, 0.75, 5, 1), rtol=1e-5)
