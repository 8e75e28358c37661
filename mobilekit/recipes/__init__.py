"""Compression recipes: one named, frozen set of choices each (``mobilekit build --recipe NAME``).

A recipe says *what* is done to the trained float model (pruning, clustering, QAT or not,
how the int8 file stores weights); the build flags say *how long* (epochs) and may override
a recipe's numbers (``--sparsity``, ``--clusters``). Each preset also lives as JSON in
``presets/`` (a test keeps the two equal), so a recipe can be read without Python.

Example: ``Recipe.preset("deep-compression").replace(clusters=8)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from mobilekit.errors import MobilekitError
from mobilekit.rewrites import DEFAULT_REWRITES, QAT_REWRITES, check_names

PRESETS_DIR = Path(__file__).with_name("presets")


@dataclass(frozen=True)
class Recipe:
    """What a build does between the float model and the int8 file.

    Attributes:
        name: the preset's name.
        summary: one line for `--help` and the report.
        sparsity: magnitude-pruning target per Conv2D/Dense kernel (tfmot PolynomialDecay); 0: none.
        m_by_n: structured pruning instead, e.g. (2, 4) zeros per 4 consecutive input-channel weights.
        clusters: weight clustering (tfmot, k-means++): at most this many values per kernel; None: none.
        qat: quantization-aware training (PQAT/CQAT/PCQAT as the above call for); False: post-training.
        fold_batch_norm: fold BatchNormalization into the convs before clustering (per-channel BN
            scales would otherwise split each cluster into one value per output channel).
        per_tensor_weights: one int8 scale per weight tensor (keeps clusters as int8 values).
        prune_epochs, cluster_epochs, qat_epochs: the recipe's fine-tuning budgets (None: the build's
            defaults, 0.5 / 0.5 / 0.25); the float training budget is the build's (``--epochs``).
        calibration: post-training activation ranges: "minmax" (the converter's), "percentile" or "mse"
            (mobilekit.ptq); QAT learns its ranges, so only with qat=False.
        bias_correction: post-training bias correction of the weights' rounding (mobilekit.ptq); qat=False.
        rewrites: export-time graph rewrites (mobilekit.rewrites.REWRITES); the trained model keeps the
            paper's graph. With QAT only "pad-fold" applies (it keeps every kernel as trained): the
            defaults' others are skipped (logged), others asked for are refused.
    """

    name: str
    summary: str
    sparsity: float = 0.0
    m_by_n: tuple[int, int] | None = None
    clusters: int | None = None
    qat: bool = True
    fold_batch_norm: bool = False
    per_tensor_weights: bool = False
    prune_epochs: float | None = None
    cluster_epochs: float | None = None
    qat_epochs: float | None = None
    calibration: str = "minmax"
    bias_correction: bool = False
    rewrites: tuple[str, ...] = DEFAULT_REWRITES

    def __post_init__(self):
        from mobilekit._checks import validate_sparsity

        validate_sparsity(self.sparsity)
        if self.m_by_n is not None:
            m_by_n = tuple(self.m_by_n)
            if len(m_by_n) != 2 or not all(isinstance(v, int) for v in m_by_n) or not 0 < m_by_n[0] < m_by_n[1]:
                raise MobilekitError(f"m_by_n must be two ints 0 < m < n such as (2, 4); received {self.m_by_n!r}")
            object.__setattr__(self, "m_by_n", m_by_n)
            if self.sparsity:
                raise MobilekitError("a recipe prunes by magnitude (sparsity) or m-by-n, not both")
        if self.qat and self.per_tensor_weights:
            raise MobilekitError(f"recipe {self.name!r}: per-tensor weight scales apply to post-training "
                                 "quantization only (a QAT'd model keeps tfmot's per-channel scales); use qat=False")
        from mobilekit.ptq import CALIBRATION_METHODS

        if self.calibration not in CALIBRATION_METHODS:
            raise MobilekitError(f"calibration must be one of {', '.join(CALIBRATION_METHODS)}; received "
                                 f"calibration={self.calibration!r}")
        if self.qat and (self.calibration != "minmax" or self.bias_correction):
            raise MobilekitError(f"recipe {self.name!r}: calibration={self.calibration!r} and bias_correction apply "
                                 "to post-training quantization only (QAT learns its ranges); use qat=False, e.g. "
                                 "--recipe int8-ptq or --no-qat")
        if isinstance(self.rewrites, str) or not isinstance(self.rewrites, (list, tuple)):
            raise MobilekitError(f"rewrites must be a list of names; received rewrites={self.rewrites!r}")
        object.__setattr__(self, "rewrites", check_names(self.rewrites))
        reshaping = [r for r in self.rewrites if r not in QAT_REWRITES]
        if self.qat and reshaping and set(self.rewrites) != set(DEFAULT_REWRITES):
            raise MobilekitError(f"recipe {self.name!r}: rewrite {reshaping[0]!r} changes kernels, which QAT would "
                                 f"then train; with QAT only {', '.join(QAT_REWRITES)} (or use qat=False)")
        if self.clusters is not None and (isinstance(self.clusters, bool) or not isinstance(self.clusters, int)
                                          or not 2 <= self.clusters <= 256):
            raise MobilekitError(f"clusters must be an int in [2, 256]; received clusters={self.clusters!r}")

    @property
    def prunes(self) -> bool:
        return self.sparsity > 0 or self.m_by_n is not None

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["m_by_n"] = list(self.m_by_n) if self.m_by_n else None
        d["rewrites"] = list(self.rewrites)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Recipe":
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise MobilekitError(f"recipe {d.get('name', '?')!r} has an unknown field {unknown[0]!r}")
        return cls(**{**d, "m_by_n": tuple(d["m_by_n"]) if d.get("m_by_n") else None,
                      **({"rewrites": tuple(d["rewrites"])} if isinstance(d.get("rewrites"), list) else {})})

    @staticmethod
    def preset(name: str) -> "Recipe":
        """A preset by name, or a recipe JSON file (the presets' own format, ``presets/*.json``)."""
        if name in PRESETS:
            return PRESETS[name]
        if str(name).endswith(".json"):
            return Recipe.load(name)
        raise MobilekitError(f"unknown recipe {name!r}; choose from {', '.join(PRESETS)}, or a recipe .json file")

    @staticmethod
    def load(path) -> "Recipe":
        """A recipe from a JSON file; every field is validated as for the presets."""
        from mobilekit.json_files import read_json

        if not Path(path).is_file():
            raise MobilekitError(f"no such recipe file: {str(path)!r}")
        d = read_json(path, "recipe file")
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not isinstance(d.get("summary"), str):
            raise MobilekitError(f"recipe file {str(path)!r} needs an object with a name and a summary")
        try:
            return Recipe.from_json(d)
        except TypeError as e:
            raise MobilekitError(f"recipe file {str(path)!r}: {e}") from None

    @staticmethod
    def resolve(name: str, sparsity: float | None = None, qat: bool | None = None,
                clusters: int | None = None, calibration: str | None = None,
                bias_correction: bool | None = None, rewrites: tuple[str, ...] | None = None) -> "Recipe":
        """The preset ``name`` with the overrides that are not None (the build flags) applied."""
        overrides = {"sparsity": sparsity, "qat": qat, "clusters": clusters, "calibration": calibration,
                     "bias_correction": bias_correction, "rewrites": rewrites}
        return Recipe.preset(name).replace(**{k: v for k, v in overrides.items() if v is not None})


PRESETS = {r.name: r for r in (
    Recipe("int8-ptq", "post-training full-int8 quantization of the float model (no pruning, no QAT)",
           qat=False),
    Recipe("int8-qat", "quantization-aware training, then full-int8"),
    Recipe("prune-int8", "magnitude pruning to 50% (PolynomialDecay), prune-preserving QAT (PQAT), full-int8",
           sparsity=0.5),
    Recipe("prune-2of4-int8", "2:4 structured pruning (tfmot m-by-n), PQAT, full-int8", m_by_n=(2, 4)),
    Recipe("cluster-int8", "16-cluster weight sharing (BN folded first), post-training int8 with per-tensor "
           "weight scales: at most 16 int8 values per kernel", clusters=16, qat=False, fold_batch_norm=True,
           per_tensor_weights=True),
    Recipe("deep-compression", "Deep Compression: 75% magnitude pruning + 16-cluster weight sharing (BN folded "
           "first) + PCQAT (zeros exact, clusters kept per output channel), shipped gzip'd", sparsity=0.75,
           clusters=16, fold_batch_norm=True, prune_epochs=1.5, cluster_epochs=1.0, qat_epochs=0.5),
)}
DEFAULT = "prune-int8"
