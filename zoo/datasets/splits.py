"""Seeded, stratified train/test splits (numpy only)."""

import numpy as np


def stratified_split(labels, test_fraction, seed):
    """Splits example indices into train and test, class by class.

    Each class gives `floor(count * test_fraction)` of its examples, drawn at
    random, to the test split and the rest to the train split, so both keep
    the class proportions. Each split is then shuffled, so that neither comes
    out sorted by class even when the labels are.

    Args:
        labels: 1-D integer array of class labels.
        test_fraction: share of each class that goes to the test split,
            strictly between 0 and 1.
        seed: integer seed; the same seed gives the same split.

    Returns:
        `(train_indices, test_indices)`: disjoint int64 arrays that together
        cover `range(len(labels))`.

    Example:

    >>> train, test = stratified_split(np.repeat(np.arange(10), 500), 0.2, seed=0)
    >>> len(train), len(test)
    (4000, 1000)
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        # The epsilon keeps exact products such as 500 * 0.2 from flooring
        # to 99 through a rounding error.
        n_test = int(np.floor(len(members) * test_fraction + 1e-9))
        test.append(members[:n_test])
        train.append(members[n_test:])
    train = rng.permutation(np.concatenate(train)).astype(np.int64)
    test = rng.permutation(np.concatenate(test)).astype(np.int64)
    return train, test
