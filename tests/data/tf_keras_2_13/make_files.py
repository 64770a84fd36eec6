"""Writes the files of this folder with the real tf.keras 2.13 (not installable beside
Keras 3, so the files are kept):

    python -m venv /tmp/tf213 && /tmp/tf213/bin/pip install tensorflow-cpu==2.13.1
    /tmp/tf213/bin/python tests/data/tf_keras_2_13/make_files.py tests/data/tf_keras_2_13

tf.keras 2.13 stores the weights of a .keras archive (and of save_weights' .weights.h5)
under ``_layer_checkpoint_dependencies/``, numbered dense, dense_2, dense_4 (each layer
with weights is counted twice); ``NAME_io.npz`` holds inputs ``x`` and tf.keras 2.13's
``model.predict(x)`` as ``y``.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

L = tf.keras.layers


def filled(model, rng):
    """Every weight from the seeded generator (variances positive)."""
    for layer in model.layers:
        layer.set_weights([np.abs(rng.normal(1.0, 0.3, w.shape)).astype("f4") if "variance" in v.name else
                           rng.normal(0.0, 0.6, w.shape).astype("f4") for w, v in zip(layer.get_weights(), layer.weights)])
    return model


def models(rng):
    inputs = L.Input((5,))
    x = L.Dense(3, activation="relu")(L.Dense(4, activation="tanh")(inputs))
    return {
        "sequential": filled(tf.keras.Sequential([
            L.Input((5,)), L.Dense(4, activation="tanh", name="hidden"), L.Dropout(0.2, name="drop"),
            L.BatchNormalization(name="norm"), L.Dense(3, activation="elu", name="mid"),
            L.Dense(2, activation="softmax", name="out")]), rng),
        "functional": filled(tf.keras.Model(inputs, L.Dense(2)(x)), rng),
        "flatten": filled(tf.keras.Sequential([L.Flatten(input_shape=(4, 5)), L.Dense(6, activation="relu"),
                                               L.Dense(2)]), rng),
    }


def main(folder: str) -> None:
    rng = np.random.default_rng(0)
    for name, model in models(rng).items():
        model.save(os.path.join(folder, f"{name}.keras"))
        if name == "flatten":  # the legacy whole-model HDF5 of Keras 2
            model.save(os.path.join(folder, f"{name}.h5"))
        if name == "sequential":
            model.save_weights(os.path.join(folder, f"{name}.weights.h5"))
            with open(os.path.join(folder, f"{name}.json"), "w") as f:
                f.write(model.to_json())
        x = rng.uniform(-2.0, 2.0, (16, *model.inputs[0].shape[1:])).astype("f4")
        np.savez(os.path.join(folder, f"{name}_io.npz"), x=x, y=model.predict(x, verbose=0))
    print(tf.__version__)


if __name__ == "__main__":
    main(sys.argv[1])
