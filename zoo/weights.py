"""Pretrained weights for the zoo's models: resolve, fetch, verify, load.

A zoo constructor's `weights=` argument takes None, a registry name, or the
path of a `.weights.h5` file; every constructor hands it to
`load_zoo_weights`, as `keras.applications` constructors do with theirs.
A registry name (see `zoo/registry.py`) resolves to, in this order:

1. the file shipped next to the registry (the package ships small ones, so
   `mnist_mlp(weights="mat")` works without a network);
2. a copy in the cache, `$KERAS_HOME/mat_keras/weights/` (`~/.keras/...`),
   whose sha256 matches the registry;
3. a download with `keras.utils.get_file` from the base URL (the `base_url`
   argument, else the environment variable `MAT_KERAS_WEIGHTS_URL`, else the
   registry's `base_url`), checked against the sha256 before it enters the
   cache.

Weight files hold the plain model (`mat_keras.strip`), stamped with the zoo
constructor's name: they load into the constructor's model, into a
`mat_keras.wrap` of it, and with plain `model.load_weights`.

Example:

>>> model = mat_keras.zoo.mnist_mlp(weights="mat")        # shipped, offline
>>> model = mat_keras.zoo.mnist_mlp(weights="mnist_mlp-mat-mnist5k")
>>> model = mat_keras.zoo.mnist_mlp(weights="my.weights.h5")
"""

import collections
import hashlib
import os
import shutil
import tempfile
import urllib.parse

import h5py
import keras

import mat_keras as mat
from mat_keras.errors import DataUnavailableError, InvalidArgumentError, ModelFileError
from mat_keras.io_utils import atomic_path
from mat_keras.wrapping import iter_layers
from mat_keras.zoo.datasets._reason import short_reason
from mat_keras.zoo.registry import VARIANTS, Registry

BASE_URL_ENV = "MAT_KERAS_WEIGHTS_URL"
SUFFIX = ".weights.h5"
# Root attribute of the HDF5 file naming the zoo constructor; Keras ignores it.
_MODEL_STAMP = "mat_keras_model"
# Keras stores a compiled model's optimizer state under this top-level group.
_OPTIMIZER_GROUP = "optimizer"


def load_zoo_weights(model, weights, model_name, *, registry=None, base_url=None):
    """Loads `weights` into a zoo constructor's freshly built model.

    The one function every zoo constructor calls with its `weights=`
    argument.

    Args:
        model: the model the constructor built (plain or wrapped).
        weights: None (keep the initialisation), a registry entry name, a
            bare variant (`"mat"`, `"vanilla"`) or the path of a
            `.weights.h5` file.
        model_name: the constructor's name, e.g. `"mnist_mlp"`: registry
            entries and stamped files of other models are refused.
        registry: a `Registry`, the path of a registry file, or None for the
            package's registry.
        base_url: where to download files that are neither shipped nor
            cached; overrides `MAT_KERAS_WEIGHTS_URL` and the registry's.

    Returns:
        `model`, with the weights loaded.

    Raises:
        InvalidArgumentError: an unknown name (the message lists the known
            ones) or an entry of another model.
        ModelFileError: a missing, truncated or foreign file, or a hash
            mismatch.
        DataUnavailableError: the file is not here and cannot be downloaded.

    Example: the end of a zoo constructor,

    ```python
    def mnist_mlp(..., weights=None):
        model = keras.Sequential([...], name="mnist_mlp")
        return load_zoo_weights(model, weights, "mnist_mlp")
    ```
    """
    if weights is None:
        return model
    path, entry = _resolve(weights, model_name, registry, base_url)
    try:
        return load_weights_file(model, path, model_name)
    except ModelFileError as error:
        if entry is None or not entry.model_kwargs:
            raise
        # The right constructor called with other arguments: say which fit.
        arguments = ", ".join(f"{key}={value!r}" for key, value in entry.model_kwargs.items())
        raise ModelFileError(
            f"{str(error).rstrip('.')}; the weights {entry.name!r} fit {entry.model}({arguments})."
        ) from None


def _resolve(weights, model_name, registry, base_url):
    """Returns `(local path, registry entry or None for a local file)`.

    Registry names win over files of the same name in the working folder,
    as `keras.applications` treats `"imagenet"`.
    """
    if not isinstance(weights, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"{model_name}(weights=...) takes None, a registry name or the path of a "
            f"{SUFFIX} file, not {weights!r}."
        )
    registry = _as_registry(registry)
    text = os.fspath(weights)
    if isinstance(weights, str) and (text in registry.entries or text in VARIANTS):
        entry = registry.resolve(text, model_name)
        return fetch_entry(entry, registry, base_url=base_url), entry
    if os.path.exists(text) or _looks_like_path(text):
        return text, None  # `load_weights_file` says what is wrong with it.
    raise InvalidArgumentError(
        f"Unknown weights {text!r} for {model_name}: no registry entry and no file of that name; "
        f"{registry.describe_known()}, or pass the path of a {SUFFIX} file."
    )


def fetch_weights(name, *, registry=None, base_url=None):
    """Returns the local path of a registry entry's file, downloading it if needed.

    Args:
        name: a registry entry name.
        registry: a `Registry`, a registry file path, or None for the
            package's.
        base_url: download location overriding `MAT_KERAS_WEIGHTS_URL` and
            the registry's `base_url`.

    Returns:
        The path of a file whose sha256 matches the registry.

    Example:

    >>> fetch_weights("mnist_mlp-mat-mnist5k")
    '.../mat_keras/zoo/weights/mnist_mlp-mat-mnist5k.weights.h5'
    """
    registry = _as_registry(registry)
    return fetch_entry(registry.get(name), registry, base_url=base_url)


def fetch_entry(entry, registry, base_url=None):
    """Like `fetch_weights`, for an entry already looked up in `registry`."""
    shipped = registry.shipped_file(entry)
    if shipped is not None:
        digest = file_sha256(shipped)
        if digest != entry.sha256:
            raise ModelFileError(
                f"The weight file {shipped} has sha256 {digest[:16]}..., not the registry's "
                f"{entry.sha256[:16]}...: the file was altered; reinstall mat-keras or rebuild it "
                f"with 'mat-keras zoo build {entry.name}'."
            )
        return shipped
    cached = cached_file(entry)
    if cached is not None:
        return cached
    base = download_base_url(registry, base_url)
    if base is None:
        raise DataUnavailableError(
            f"The weights {entry.name!r} ({entry.file}) are neither shipped nor cached in "
            f"{weights_cache_dir()}, and no download location is set; set {BASE_URL_ENV} to a mirror "
            f"that holds {entry.file}, or pass weights=<path to a local copy of {entry.file}>."
        )
    return _download(entry, base)


def weights_cache_dir():
    """Returns the folder that caches downloaded weight files.

    `$KERAS_HOME/mat_keras/weights`, where `KERAS_HOME` defaults to `~/.keras`
    (`/tmp/.keras` when the home folder is read-only), the rule Keras applies
    to its own downloads. Read at each call, so a change of `KERAS_HOME`
    takes effect.
    """
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        if not os.access(base, os.W_OK):
            base = "/tmp"
        home = os.path.join(base, ".keras")
    return os.path.join(home, "mat_keras", "weights")


def cached_file(entry):
    """Path of the entry's file in the cache if its sha256 matches, else None."""
    path = os.path.join(weights_cache_dir(), entry.file)
    if os.path.isfile(path) and file_sha256(path) == entry.sha256:
        return path
    return None


def weights_status(entry, registry):
    """Where the entry's file is: `"shipped"`, `"cached"` or `"not cached"`."""
    if registry.shipped_file(entry) is not None:
        return "shipped"
    return "cached" if cached_file(entry) is not None else "not cached"


def download_base_url(registry, base_url=None):
    """The base URL downloads use: the argument, else `MAT_KERAS_WEIGHTS_URL`, else the registry's."""
    return base_url or os.environ.get(BASE_URL_ENV) or registry.base_url or None


def file_sha256(path):
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_weights_file(model, path, model_name):
    """Writes the plain (stripped) model's weights to `path`, atomically.

    The file is what `model.save_weights` writes for `mat_keras.strip(model)`,
    plus a root attribute naming the zoo constructor, so that loading it into
    another architecture fails with a clear message.

    Args:
        model: a Sequential or functional model, wrapped or not.
        path: destination, ending in `.weights.h5`.
        model_name: the zoo constructor that builds the architecture.

    Returns:
        `(sha256, size)` of the written file.
    """
    path = os.fspath(path)
    if not path.endswith(SUFFIX):
        raise InvalidArgumentError(f"Weight files end in {SUFFIX}; got {path!r}.")
    plain = mat.strip(model)
    # Keras clones a compiled model compiled, and a compiled model's
    # save_weights stores its optimizer state too (three times the weights
    # for Adam): save an uncompiled twin instead.
    bare = plain.__class__.from_config(plain.get_config())
    bare.set_weights(plain.get_weights())
    with atomic_path(path) as tmp:
        bare.save_weights(tmp)
        with h5py.File(tmp, "a") as handle:
            handle.attrs[_MODEL_STAMP] = model_name
        digest, size = file_sha256(tmp), os.path.getsize(tmp)
    return digest, size


def load_weights_file(model, path, model_name=None):
    """Loads a `.weights.h5` file into `model`, or says in one sentence why not.

    The file's arrays are checked against the model's before Keras loads
    them, so that a file of another architecture is named as such. A wrapped
    model (`mat_keras.wrap`) receives the file's plain weights in its inner
    layers.

    Args:
        model: a Keras model, plain or wrapped.
        path: a `.weights.h5` file.
        model_name: the zoo constructor's name; a file stamped with another
            constructor is refused. None skips that check.

    Returns:
        `model`.

    Raises:
        ModelFileError: the file is missing, truncated, not HDF5, or holds
            another architecture.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError(f"No weights file at {path!r}.")
    if not path.endswith(SUFFIX):
        raise ModelFileError(
            f"{path!r} is not a {SUFFIX} file; weights= takes a registry name or a file written by "
            "model.save_weights or 'mat-keras zoo build' (load a .keras model with keras.saving.load_model)."
        )
    stamp, shapes = _read_weights_file(path)
    label = model_name or model.name
    if model_name and stamp and stamp != model_name:
        raise ModelFileError(f"{path!r} holds weights of the zoo model {stamp}, not of {model_name}.")
    wrapped = bool(mat.noisy_layers(model))
    target = mat.strip(model) if wrapped else model
    _check_shapes(target, shapes, path, label)
    try:
        target.load_weights(path)
    except Exception as error:  # noqa: BLE001 -- Keras raises many types for a bad file.
        raise ModelFileError(f"Cannot load {path!r} into {label} ({short_reason(error)}).") from error
    if wrapped:
        _copy_into_wrapped(target, model)
    return model


def _read_weights_file(path):
    """Returns `(constructor stamp or None, list of array shapes)` of a weights file."""
    shapes = []

    def visit(name, item):
        if isinstance(item, h5py.Dataset) and name.split("/")[0] != _OPTIMIZER_GROUP:
            shapes.append(tuple(item.shape))

    try:
        with h5py.File(path, "r") as handle:
            stamp = handle.attrs.get(_MODEL_STAMP)
            handle.visititems(visit)
    except OSError as error:
        raise ModelFileError(
            f"Cannot read {path!r}: it is truncated or not an HDF5 weights file ({short_reason(error)})."
        ) from None
    if isinstance(stamp, bytes):
        stamp = stamp.decode()
    return (str(stamp) if stamp is not None else None), shapes


def _check_shapes(model, shapes, path, label):
    """Raises ModelFileError unless the file holds exactly the model's array shapes."""
    expected = collections.Counter(tuple(v.shape) for v in model.weights)
    found = collections.Counter(shapes)
    if expected == found:
        return
    extra, lacking = found - expected, expected - found
    details = []
    if extra:
        details.append(f"arrays of shapes {_shape_list(extra)} that the model lacks")
    if lacking:
        details.append(f"no arrays of the model's shapes {_shape_list(lacking)}")
    raise ModelFileError(
        f"{path!r} holds weights of another architecture than this {label} "
        f"({sum(found.values())} arrays against the model's {sum(expected.values())}; the file has "
        f"{' and '.join(details)})."
    )


def _shape_list(counter, limit=4):
    shapes = sorted(counter.elements())
    text = ", ".join(str(shape) for shape in shapes[:limit])
    return text + (f" and {len(shapes) - limit} more" if len(shapes) > limit else "")


def _copy_into_wrapped(plain, wrapped):
    """Copies the weights of `plain` into the matching layers of its wrapped twin.

    `mat_keras.strip` keeps the layer order, so the two walks pair up.
    """
    for source, layer in zip(iter_layers(plain), iter_layers(wrapped)):
        target = layer.layer if isinstance(layer, mat.NoisyWeights) else layer
        target.set_weights(source.get_weights())


def _download(entry, base):
    """Downloads the entry's file into the cache, all or nothing.

    `keras.utils.get_file` downloads into a staging folder inside the cache
    and checks the sha256 there; the file moves into the cache only when it
    matches, so a wrong or interrupted download never leaves a file behind.
    """
    folder = weights_cache_dir()
    origin = base.rstrip("/") + "/" + urllib.parse.quote(entry.file)
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".download-", dir=folder)
    try:
        try:
            staged = keras.utils.get_file(
                entry.file,
                origin,
                file_hash=entry.sha256,
                hash_algorithm="sha256",
                cache_dir=folder,
                cache_subdir=staging,
            )
        except Exception as error:  # noqa: BLE001 -- network stacks raise anything.
            received = os.path.join(staging, entry.file)
            if os.path.isfile(received):  # Keras only leaves a complete download behind.
                raise ModelFileError(
                    f"The file downloaded from {origin} has sha256 {file_sha256(received)[:16]}..., not the "
                    f"registry's {entry.sha256[:16]}... for {entry.name!r}: the mirror holds another file, "
                    "and nothing was cached."
                ) from None
            raise DataUnavailableError(
                f"The weights {entry.name!r} ({entry.file}) are neither shipped nor cached in {folder}, "
                f"and the download from {origin} failed ({short_reason(error)}); set {BASE_URL_ENV} to a "
                f"mirror that holds {entry.file}, or pass weights=<path to a local copy of {entry.file}>."
            ) from None
        final = os.path.join(folder, entry.file)
        os.replace(staged, final)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _as_registry(registry):
    return registry if isinstance(registry, Registry) else Registry.load(registry)


def _looks_like_path(text):
    return os.sep in text or "/" in text or text.endswith((".h5", ".keras"))

