"""The registry of pretrained weights: which files exist and what they achieved.

The registry is data, a JSON file: the package ships one
(`zoo/weights/registry.json`), and `mat-keras zoo build` writes or updates
others. It holds a base URL that published files are downloaded from and one
entry per weight file:

```json
{"format": 1, "base_url": null, "entries": [{
  "name": "mnist_mlp-mat-mnist5k", "model": "mnist_mlp", "model_kwargs": {...},
  "variant": "mat", "default": true, "dataset": "mnist-5k",
  "training_noise": {...}, "device": null, "recipe": {...},
  "file": "mnist_mlp-mat-mnist5k.weights.h5", "sha256": "...", "size": 407000,
  "sweep": {"sds": [...], "draws": 10, "seed": 0, "mean": [...], "std": [...]},
  "description": "...", "built_with": {...}}]}
```

A file that sits next to the registry file is "shipped": it loads without a
download. Any other entry must have been published at `base_url`.
"""

import dataclasses
import json
import os

from mat_keras.errors import InvalidArgumentError
from mat_keras.io_utils import atomic_write

FORMAT = 1
VARIANTS = ("vanilla", "mat")
PACKAGE_REGISTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "registry.json")

_REQUIRED = ("name", "model", "variant", "dataset", "file", "sha256", "size", "recipe", "sweep")


@dataclasses.dataclass(frozen=True)
class WeightsEntry:
    """One published weight file.

    Attributes:
        name: the registry name, e.g. `"mnist_mlp-mat-mnist5k"`.
        model: the zoo constructor whose model the file fits, e.g. `"mnist_mlp"`.
        variant: `"vanilla"` (trained clean) or `"mat"` (memristor-aware).
        dataset: the `zoo.load_dataset` name it was trained and swept on.
        file: the file name, ending in `.weights.h5`.
        sha256: hex digest of the file.
        size: the file's size in bytes.
        recipe: how it was trained (task, epochs, optimizer, seed, ...).
        sweep: the measured robustness sweep on the dataset's test split:
            `sds`, `draws`, `seed`, `mean` and `std` (fractions, one per sd).
        model_kwargs: constructor arguments the file fits (e.g. `num_classes`).
        training_noise: the training noise config (`mat_keras.noise.serialize`),
            None for a vanilla model.
        device: name of a device preset the noise stands for, None when the
            noise is the reference implementation's plain Gaussian.
        default: the entry a bare variant (`weights="mat"`) picks when a model
            has several entries of that variant.
        description: one line for people.
        built_with: versions of the software that built it.
    """

    name: str
    model: str
    variant: str
    dataset: str
    file: str
    sha256: str
    size: int
    recipe: dict
    sweep: dict
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    training_noise: dict = None
    device: str = None
    default: bool = False
    description: str = ""
    built_with: dict = dataclasses.field(default_factory=dict)

    def accuracy_at(self, sd):
        """Mean swept accuracy (a fraction) at inference noise `sd`, or None if not swept."""
        for level, mean in zip(self.sweep.get("sds", ()), self.sweep.get("mean", ())):
            if abs(level - sd) < 1e-9:
                return mean
        return None

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data, source="the registry"):
        """Builds an entry from its JSON object, checking the fields it needs.

        Raises:
            InvalidArgumentError: a required field is missing or malformed.
        """
        if not isinstance(data, dict):
            raise InvalidArgumentError(f"{source} holds an entry that is not a JSON object: {data!r:.80}.")
        label = data.get("name", "<unnamed>")
        missing = [key for key in _REQUIRED if key not in data]
        if missing:
            raise InvalidArgumentError(f"Entry {label!r} of {source} lacks {', '.join(missing)}.")
        if data["variant"] not in VARIANTS:
            raise InvalidArgumentError(
                f"Entry {label!r} of {source} has variant {data['variant']!r}; variants are {', '.join(VARIANTS)}."
            )
        if not data["file"].endswith(".weights.h5") or os.path.basename(data["file"]) != data["file"]:
            raise InvalidArgumentError(
                f"Entry {label!r} of {source} names the file {data['file']!r}; "
                "registry files are plain names ending in .weights.h5."
            )
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclasses.dataclass
class Registry:
    """A registry file's content.

    Attributes:
        path: the JSON file it was read from (or will be written to).
        base_url: where the files not shipped next to `path` are published,
            or None when none are.
        entries: `{name: WeightsEntry}` in file order.

    Example:

    >>> registry = Registry.load()
    >>> registry.names()
    ['mnist_mlp-mat-mnist5k', 'mnist_mlp-vanilla-mnist5k']
    """

    path: str
    base_url: str = None
    entries: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, path=None, missing_ok=False):
        """Reads a registry file.

        Args:
            path: the JSON file; None reads the package's registry.
            missing_ok: return an empty registry when `path` does not exist
                (a build starting a new registry).

        Returns:
            A `Registry`.

        Raises:
            InvalidArgumentError: the file is missing, is not a registry, or
                holds a malformed entry.
        """
        path = os.path.abspath(os.path.expanduser(path or PACKAGE_REGISTRY))
        if not os.path.isfile(path):
            if missing_ok:
                return cls(path=path)
            raise InvalidArgumentError(f"No weights registry at {path!r}.")
        try:
            with open(path, encoding="utf-8") as handle:
                payload = json.load(handle)
        except (OSError, ValueError) as error:
            raise InvalidArgumentError(f"Cannot read the weights registry {path!r} ({error}).") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise InvalidArgumentError(
                f"{path!r} is not a mat-keras weights registry of format {FORMAT}."
            )
        entries = {}
        for item in payload.get("entries", []):
            entry = WeightsEntry.from_dict(item, source=path)
            if entry.name in entries:
                raise InvalidArgumentError(f"{path!r} lists the entry {entry.name!r} twice.")
            entries[entry.name] = entry
        return cls(path=path, base_url=payload.get("base_url"), entries=entries)

    @property
    def folder(self):
        """The folder that holds the registry file and its shipped weight files."""
        return os.path.dirname(self.path)

    def names(self):
        """Entry names, sorted."""
        return sorted(self.entries)

    def get(self, name):
        """Returns the entry called `name`.

        Raises:
            InvalidArgumentError: no such entry; the message lists the known ones.
        """
        if name not in self.entries:
            raise InvalidArgumentError(f"Unknown weights {name!r}; {self.describe_known(variants=False)}.")
        return self.entries[name]

    def resolve(self, weights, model_name):
        """Returns the entry that `weights=` names for the constructor `model_name`.

        `weights` is an entry name, or a bare variant (`"mat"`, `"vanilla"`):
        the model's only entry of that variant, or its `default` one.

        Raises:
            InvalidArgumentError: unknown name, an entry of another model, or
                a variant with several entries and no default.
        """
        if weights in VARIANTS:
            candidates = [e for e in self.entries.values() if e.model == model_name and e.variant == weights]
            defaults = [e for e in candidates if e.default]
            if len(candidates) == 1 or len(defaults) == 1:
                return (defaults or candidates)[0]
            if not candidates:
                raise InvalidArgumentError(
                    f"No {weights!r} weights for {model_name} in the registry yet ('mat-keras zoo build' makes "
                    f"them from a task's recipe); {self.describe_known()}."
                )
            raise InvalidArgumentError(
                f"{model_name} has several {weights!r} weights ({', '.join(e.name for e in candidates)}) "
                "and none is marked default; pass one of these names."
            )
        entry = self.get(weights)
        if entry.model != model_name:
            raise InvalidArgumentError(
                f"The weights {weights!r} are for {entry.model}, not {model_name}; "
                f"the {model_name} weights are: {', '.join(self._names_for(model_name)) or 'none yet'}."
            )
        return entry

    def shipped_file(self, entry):
        """Path of the entry's file next to the registry, or None when it is not there."""
        path = os.path.join(self.folder, entry.file)
        return path if os.path.isfile(path) else None

    def with_entries(self, entries):
        """Returns a copy with `entries` added, replacing entries of the same name.

        A replaced entry keeps its `default` mark; a new entry becomes the
        default when its model has no other entry of its variant, so that a
        bare `weights="mat"` keeps resolving to one file.
        """
        merged = dict(self.entries)
        for entry in entries:
            old = merged.get(entry.name)
            if old is not None:
                default = old.default
            else:
                default = not any(
                    e.model == entry.model and e.variant == entry.variant for e in merged.values()
                )
            merged[entry.name] = dataclasses.replace(entry, default=default)
        return Registry(path=self.path, base_url=self.base_url, entries=merged)

    def save(self):
        """Writes the registry to `path` atomically."""
        payload = {
            "format": FORMAT,
            "about": "mat-keras pretrained weights; 'mat-keras zoo build' writes the entries.",
            "base_url": self.base_url,
            "entries": [entry.to_dict() for entry in self.entries.values()],
        }
        with atomic_write(self.path, encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1)
            handle.write("\n")

    def _names_for(self, model_name):
        return [e.name for e in self.entries.values() if e.model == model_name]

    def describe_known(self, variants=True):
        """A clause listing the entry names (and the bare variants), for error messages."""
        if not self.entries:
            return f"the registry {self.path} is empty"
        names = ", ".join(self.names())
        if variants:
            return f"the known weights are {names} (or the bare variants {', '.join(VARIANTS)})"
        return f"the known weights are {names}"
