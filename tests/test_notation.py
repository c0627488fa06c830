import pytest

from snnbridge.errors import NotationError
from snnbridge.models import TABLE1, TABLE1_INPUTS, parse_structure
from snnbridge.models.notation import FC, AvgPool, Conv

# hand-computed per-layer output shapes for every Table-1 structure
EXPECTED = {
    "mnist_mlp": [(512,), (10,)],
    "mnist_cnn": [(32, 28, 28), (32, 14, 14), (32, 14, 14), (32, 7, 7), (128,), (10,)],
    "cifar10_cnn": [(64, 32, 32), (64, 16, 16), (128, 16, 16), (128, 16, 16), (128, 8, 8), (256,), (10,)],
    "nmnist_mlp": [(512,), (512,), (10,)],
    "nmnist_cnn": [(64, 34, 34), (128, 34, 34), (128, 17, 17), (128, 17, 17), (128, 8, 8), (256,), (10,)],
    "dvscifar10_cnn": [(64, 42, 42), (64, 21, 21), (128, 21, 21), (128, 10, 10), (256,), (10,)],  # 42x42 frames
}


@pytest.mark.parametrize("key", sorted(TABLE1))
def test_every_table1_structure_parses_with_hand_computed_shapes(key):
    s = parse_structure(TABLE1[key])
    assert s.shapes(TABLE1_INPUTS[key]) == EXPECTED[key]
    assert s.text == TABLE1[key]
    assert parse_structure(s.text) == s
    assert s.num_classes == 10


def test_layer_kinds_and_defaults():
    s = parse_structure("Input-32C3-AP2-128FC-10")
    assert s.layers == (Conv(32, 3, 1), AvgPool(2), FC(128), FC(10))
    assert s.layers[0].pad == 1
    assert parse_structure("512-10").layers == (FC(512), FC(10))  # 'Input' is optional


def test_conv_stride_default_and_suffix():
    s = parse_structure("Input-64C3-128C3s1-10", conv_stride=2)
    assert s.layers[0].stride == 2 and s.layers[1].stride == 1
    # Model-4 on N-MNIST: stride 2 everywhere
    assert s.shapes((2, 34, 34))[:2] == [(64, 17, 17), (128, 17, 17)]


@pytest.mark.parametrize("spec,token,pos", [
    ("Input-32C3-MP2-10", "MP2", 3),
    ("Input-32X3-10", "32X3", 2),
    ("512-foo-10", "foo", 2),
    ("Input-512-Input-10", "Input", 3),
])
def test_unknown_token_is_named_with_position(spec, token, pos):
    with pytest.raises(NotationError) as e:
        parse_structure(spec)
    assert f"'{token}'" in str(e.value) and f"position {pos}" in str(e.value)


@pytest.mark.parametrize("spec", ["", "Input", "Input-32C3-AP2", "Input-0-10", "Input-32C0-10"])
def test_invalid_structures(spec):
    with pytest.raises(NotationError):
        parse_structure(spec)


def test_shape_errors_name_the_layer():
    with pytest.raises(NotationError, match="layer 1 '32C3'"):
        parse_structure("Input-32C3-10").shapes((784,))
    with pytest.raises(NotationError, match="shrinks"):
        parse_structure("Input-AP8-AP2-10").shapes((1, 8, 8))
