"""Does the CIFAR input pipeline keep up with training?

Measures, in one run, the training step rate of a CIFAR CNN fed

  (a) in memory: already-normalised float32 batches from a cached
      `tf.data.Dataset` (no per-step input work at all), and
  (b) `load_dataset("cifar10").train_dataset(128)`: uint8 images shuffled,
      batched, then cast, flipped, rotated and normalised by a parallel map,

and prints the ratio (b) / (a). A ratio near 1 means the pipeline hides
behind the model's compute; the target is at least 0.9.

The data are `tfds.testing.mock_data` images (no download). Warm-up epochs
(tracing, cache filling) are excluded; the timed epochs alternate between
the two feeds so that a change of machine load hits both alike.

Run:  python benchmarks/cifar_pipeline.py [--examples 1024] [--rounds 2] [--model small]

`--model small` swaps the zoo's CNN for a much lighter one: faster steps ask
more of the pipeline, so its ratio is the stricter test.
"""

import argparse
import tempfile

import keras
import tensorflow as tf
import tensorflow_datasets as tfds

from mat_keras import zoo
from timing import Stopwatch

BATCH = 128


def small_cnn(num_classes=10):
    """A stand-in for the zoo's CIFAR CNN when it is not available."""
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes),
        ]
    )


def build_model(kind):
    model, name = None, "the benchmark's small CNN"
    if kind == "zoo":
        try:
            model, name = zoo.cifar_cnn(), "mat_keras.zoo.cifar_cnn"
        except AttributeError:  # The zoo's models may not have landed yet.
            pass
    if model is None:
        model = small_cnn()
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model, name


def timed_epoch(model, dataset):
    """Returns the seconds one epoch of `model.fit` takes on `dataset`."""
    with Stopwatch() as watch:
        # The datasets shuffle themselves; fit's own shuffle flag does not apply.
        model.fit(dataset, epochs=1, shuffle=False, verbose=0)
    return watch.seconds


def batches_per_second(dataset, epochs=3):
    """The pipeline's own throughput, with no model to feed."""
    for _ in dataset:  # warm-up: start the threads, trace the map
        pass
    batches = 0
    with Stopwatch() as watch:
        for _ in range(epochs):
            for _ in dataset:
                batches += 1
    return batches / watch.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1024, help="mock training images")
    parser.add_argument("--rounds", type=int, default=2, help="timed epochs per feed")
    parser.add_argument("--model", choices=("zoo", "small"), default="zoo", help="zoo.cifar_cnn or a lighter CNN")
    args = parser.parse_args()

    with tfds.testing.mock_data(num_examples=args.examples):
        data = zoo.load_dataset("cifar10", data_dir=tempfile.mkdtemp(), seed=0)
    steps = -(-len(data.x_train) // BATCH)

    in_memory = (
        tf.data.Dataset.from_tensor_slices((data.preprocess(data.x_train), data.y_train)).batch(BATCH).cache()
    )
    pipeline = data.train_dataset(BATCH)  # shuffle + augmentation + normalisation

    model, model_name = build_model(args.model)
    # Warm-up: trace the train function, fill the cache, start the threads.
    timed_epoch(model, in_memory)
    timed_epoch(model, pipeline)

    seconds = {"in-memory": [], "pipeline": []}
    for _ in range(args.rounds):
        seconds["in-memory"].append(timed_epoch(model, in_memory))
        seconds["pipeline"].append(timed_epoch(model, pipeline))
    rates = {feed: args.rounds * steps / sum(times) for feed, times in seconds.items()}
    # Each round's two epochs ran back to back: their ratio is the least
    # disturbed by load that other processes put on the machine meanwhile.
    per_round = [memory / piped for memory, piped in zip(seconds["in-memory"], seconds["pipeline"])]
    alone = batches_per_second(pipeline)

    print(f"model: {model_name}, backend {keras.backend.backend()}, batch {BATCH}, "
          f"{len(data.x_train)} mock CIFAR-10 images ({steps} steps/epoch), {args.rounds} timed epochs per feed")
    for feed, rate in rates.items():
        print(f"  {feed:10s} {rate:7.2f} steps/s")
    print(f"  pipeline alone, no model: {alone:.1f} batches/s ({alone / rates['in-memory']:.0f}x the in-memory step rate)")
    print(f"  per-round ratios: {', '.join(f'{r:.3f}' for r in per_round)}")
    ratio = rates["pipeline"] / rates["in-memory"]
    print(f"pipeline / in-memory step rate: {ratio:.3f} (target >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'})")
    return ratio


if __name__ == "__main__":
    main()
