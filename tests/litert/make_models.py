"""Write the tiny one-op int8 ``.tflite`` files that ``tests/test_litert.py`` runs.

How to rerun (needs TensorFlow, which qkit and its tests never import)::

    python -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tfvenv/bin/python tests/litert/make_models.py

It rewrites ``tests/litert/*.tflite`` (one file per case of ``CASES`` below, a few KB
each), ``tests/litert/other/max_pool.tflite`` (an operator qkit's reader must refuse)
and ``tests/litert/cases.json`` (what each file claims to hold: op, options,
shapes; the tests check the files against it). Everything is seeded: the same
TensorFlow version writes the same weights and the same calibrated grids.

Each file is a Keras model of one layer, converted by TensorFlow Lite's converter with
full-integer post-training quantization: a representative dataset (random batches
from a fixed seed), int8 input and int8 output, so the file holds exactly one
FULLY_CONNECTED, CONV_2D or DEPTHWISE_CONV_2D operator and no QUANTIZE/DEQUANTIZE.
TFLite's converter quantizes convolution weights per output channel and (by default)
dense weights per tensor; ``fc_per_channel`` asks for per-channel dense weights.

The converter calibrates an output *after* its fused ReLU / ReLU6, so the clamp the
interpreter derives from the activation (``zp`` for ReLU, ``zp + round(6 / scale)``
for ReLU6) falls on the grid's own ends and never binds. The ``*_wide`` cases widen
the output grid afterwards (zero point 0, scale ``WIDE / 127``, written into the
flatbuffer), so the fused clamp lies inside the grid and the tests see it act.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import flatbuffers  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.lite.python import schema_py_generated as schema  # noqa: E402

HERE = Path(__file__).resolve().parent
RELU6 = tf.nn.relu6
WIDE = 8.0  # the *_wide cases' output grid: [-WIDE, WIDE], zero point 0

# name: (layer factory, input shape without batch, options the file must show, converter flags)
CASES = {
    "fc_bias": (lambda: tf.keras.layers.Dense(6), (20,), dict(op="FULLY_CONNECTED", activation=None)),
    "fc_nobias": (lambda: tf.keras.layers.Dense(6, use_bias=False), (20,),
                  dict(op="FULLY_CONNECTED", activation=None, bias=False)),
    "fc_relu": (lambda: tf.keras.layers.Dense(8, activation="relu"), (24,),
                dict(op="FULLY_CONNECTED", activation="RELU")),
    "fc_relu6": (lambda: tf.keras.layers.Dense(8, activation=RELU6), (24,),
                 dict(op="FULLY_CONNECTED", activation="RELU6")),
    "fc_per_channel": (lambda: tf.keras.layers.Dense(6), (20,),
                       dict(op="FULLY_CONNECTED", activation=None, per_channel=True)),
    "conv_same": (lambda: tf.keras.layers.Conv2D(4, 3, padding="same"), (7, 7, 3),
                  dict(op="CONV_2D", padding="SAME", stride=(1, 1), dilation=(1, 1))),
    "conv_valid": (lambda: tf.keras.layers.Conv2D(4, 3, padding="valid"), (7, 7, 3),
                   dict(op="CONV_2D", padding="VALID", stride=(1, 1), dilation=(1, 1))),
    "conv_stride2_same": (lambda: tf.keras.layers.Conv2D(4, 3, strides=2, padding="same"), (8, 8, 3),
                          dict(op="CONV_2D", padding="SAME", stride=(2, 2), dilation=(1, 1))),
    "conv_stride2_valid": (lambda: tf.keras.layers.Conv2D(4, 3, strides=2, padding="valid"), (9, 9, 3),
                           dict(op="CONV_2D", padding="VALID", stride=(2, 2), dilation=(1, 1))),
    "conv_dilation2": (lambda: tf.keras.layers.Conv2D(4, 3, dilation_rate=2, padding="same"), (9, 9, 3),
                       dict(op="CONV_2D", padding="SAME", stride=(1, 1), dilation=(2, 2))),
    "conv_relu": (lambda: tf.keras.layers.Conv2D(4, 3, padding="same", activation="relu"), (6, 6, 3),
                  dict(op="CONV_2D", activation="RELU")),
    "conv_relu6": (lambda: tf.keras.layers.Conv2D(4, 3, padding="same", activation=RELU6), (6, 6, 3),
                   dict(op="CONV_2D", activation="RELU6")),
    "dw_m1_same": (lambda: tf.keras.layers.DepthwiseConv2D(3, padding="same"), (7, 7, 4),
                   dict(op="DEPTHWISE_CONV_2D", padding="SAME", stride=(1, 1), multiplier=1)),
    "dw_m2_valid": (lambda: tf.keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="valid"), (7, 7, 3),
                    dict(op="DEPTHWISE_CONV_2D", padding="VALID", stride=(1, 1), multiplier=2)),
    "dw_m1_stride2": (lambda: tf.keras.layers.DepthwiseConv2D(3, strides=2, padding="same"), (8, 8, 4),
                      dict(op="DEPTHWISE_CONV_2D", padding="SAME", stride=(2, 2), multiplier=1)),
    "dw_m2_stride2_relu6": (lambda: tf.keras.layers.DepthwiseConv2D(
        3, strides=2, depth_multiplier=2, padding="same", activation=RELU6), (9, 9, 2),
        dict(op="DEPTHWISE_CONV_2D", padding="SAME", stride=(2, 2), multiplier=2, activation="RELU6")),
    "fc_relu_wide": (lambda: tf.keras.layers.Dense(8, activation="relu"), (24,),
                     dict(op="FULLY_CONNECTED", activation="RELU", wide=True)),
    "fc_relu6_wide": (lambda: tf.keras.layers.Dense(8, activation=RELU6), (24,),
                      dict(op="FULLY_CONNECTED", activation="RELU6", wide=True)),
    "conv_relu6_wide": (lambda: tf.keras.layers.Conv2D(4, 3, padding="same", activation=RELU6), (6, 6, 3),
                        dict(op="CONV_2D", activation="RELU6", wide=True)),
    "dw_relu_wide": (lambda: tf.keras.layers.DepthwiseConv2D(3, padding="valid", activation="relu"), (6, 6, 3),
                     dict(op="DEPTHWISE_CONV_2D", activation="RELU", multiplier=1, wide=True)),
}


def widen_output(blob: bytes) -> bytes:
    """The same model with its operator's output grid set to [-WIDE, WIDE] (zero point 0)."""
    model = schema.ModelT.InitFromPackedBuf(blob, 0)
    graph = model.subgraphs[0]
    out = graph.tensors[graph.operators[0].outputs[0]]
    out.quantization.scale = [float(np.float32(WIDE / 127))]
    out.quantization.zeroPoint = [0]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


OTHER = {"max_pool": (lambda: tf.keras.layers.MaxPooling2D(2), (4, 4, 2), dict(op="MAX_POOL_2D"))}


def build(name: str, seed: int) -> bytes:
    """One Keras layer with seeded weights (bias included), converted to a full-int8 .tflite."""
    factory, shape, claims = CASES[name] if name in CASES else OTHER[name]
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input(shape=shape, batch_size=1)
    layer = factory()
    model = tf.keras.Model(inputs, layer(inputs))
    rng = np.random.default_rng(seed)
    weights = [w + (rng.normal(0.0, 0.3, w.shape).astype(np.float32) if w.ndim == 1 else 0.0)
               for w in layer.get_weights()]  # biases start at 0: give them values that matter
    layer.set_weights(weights)
    data = rng.normal(0.0, 1.0, (64, *shape)).astype(np.float32)

    def representative():
        for row in data:
            yield [row[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    if claims["op"] == "FULLY_CONNECTED":  # TFLite's default for dense layers is per-tensor weights
        converter._experimental_disable_per_channel_quantization_for_dense_layers = not claims.get(
            "per_channel", False)
    blob = converter.convert()
    return widen_output(blob) if claims.get("wide") else blob


def main() -> None:
    manifest = {}
    for seed, name in enumerate(CASES):
        blob = build(name, seed)
        (HERE / f"{name}.tflite").write_bytes(blob)
        _, shape, claims = CASES[name]
        manifest[name] = dict(claims, input_shape=[1, *shape])
        print(f"{name}.tflite: {len(blob)} bytes")
    (HERE / "other").mkdir(exist_ok=True)
    for name in OTHER:
        (HERE / "other" / f"{name}.tflite").write_bytes(build(name, 0))
    (HERE / "cases.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
