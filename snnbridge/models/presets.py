"""Experiment presets for the six models: ``paper`` (Deng et al. 2020, Tables 1-3), ``quick`` (2 CPU cores,
< 15 min offline) and ``test`` (seconds, for the test-suite).

A preset holds, per paper dataset column (``mnist``, ``cifar10``, ``nmnist``, ``dvs-cifar10``), the training
settings (:class:`TrainSettings`), the SNN settings of Model-2/3/6 (:class:`SpikeSettings`), the
structure of each network (Table 1, optionally scaled), data sizes, event binning, backend evaluation,
the Fig. 13 sweep grid and t-SNE settings.  Offline workloads use the column they stand in for
(embedded digits → ``mnist``, emulated digit events → ``nmnist``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace

from snnbridge.errors import SnnBridgeError
from snnbridge.models.notation import TABLE1

PAPER_DATASETS = ("mnist", "cifar10", "nmnist", "dvs-cifar10")
NETWORKS = {"mnist": ("mlp", "cnn"), "cifar10": ("cnn",), "nmnist": ("mlp", "cnn"), "dvs-cifar10": ("cnn",)}
"""Which Table-1 networks each paper dataset has."""


@dataclass(frozen=True)
class TrainSettings:
    """One column of Tables 2-3's common rows plus §4.1's optimiser: epochs, batch size, optimiser, lr schedule."""

    epochs: int
    batch_size: int = 50
    optimizer: str = "adam"
    lr: float = 1e-4
    lr_step: int | None = None
    lr_gamma: float = 0.1
    snn_lr: float | None = None
    """Learning rate of the STBP-trained SNNs (Model-3/6) when it differs from the ANNs' (``None``: ``lr``)."""


@dataclass(frozen=True)
class SpikeSettings:
    """SNN settings of one model: time window ``T``, firing threshold ``u_th``, decay factor ``τ`` (``k``),
    gradient width ``a``."""

    T: int
    threshold: float
    decay: float = 0.25
    surrogate_width: float = 0.5


@dataclass(frozen=True)
class Preset:
    """Everything a reproduction run needs besides the data.

    Attributes:
        name: preset name.
        train: paper dataset (optionally ``"<dataset>/<network>"``) → :class:`TrainSettings` (all six models
            of that column).
        spiking: ``"<dataset>/<model>"`` (model ``2``, ``3``, ``6``; optionally ``"/<network>"``) →
            :class:`SpikeSettings`.
        width: paper dataset → network → width factor applied to Table 1 (1 = as published).
        train_limit / test_limit: samples per split for real datasets (``None``: all); offline sets are
            scaled with ``offline_fraction``.
        offline_fraction: fraction of the embedded/emulated sets used (1 = all 1,797 digits).
        frame_window_us: Model-6's event window (µs): the recording is aggregated every 3 ms (paper §4.2,
            Fig. 11) and the first ``T`` windows (Table 3) are the SNN's steps (binary frames).
        binary_columns: columns of Model-4's binary image (Fig. 4c): the recording cut into that many windows
            (100 in the paper's cost table, ≈ 3 ms on N-MNIST).
        networks: paper dataset → the Table-1 networks this preset runs (default: all of them).
        threshold_candidates: Model-2's threshold-tuning grid (the Table-2 ``u_th`` is always added).
        curve_samples: test samples of Model-2's accuracy-vs-T curve (Fig. 9b; ``None``: all).
        calib_samples: training images used for Model-2's normalisation.
        backends: simulators to evaluate every SNN on (reference always; others when installed).
        backend_samples: test samples run through each non-reference backend (``None``: all); per-backend
            override in ``backend_sample_limits``; ``backend_networks`` restricts a backend to some networks
            (e.g. Brian2 to the MLPs, its CNN synapse construction takes minutes).
        sweep_T / sweep_thresholds / sweep_network / sweep_epochs: the Fig. 13 grid for Model-6.
        tsne_samples / tsne_perplexities: Fig. 12.
        mae_samples: test images of the Fig. 8b MAE-vs-T analysis.
        encoding_layer: also train Model-3 with an encoding layer (Table 4's ``b`` rows) on these datasets.
        threshold_compare: how the SNNs of Models 2, 3 and 6 fire: ``"inclusive"`` (``u >= u_th``, the paper's
            Eq. 4, the default) or ``"strict"`` (``u > u_th``, as snnTorch and Norse fire); recorded in each
            exported graph's metadata, so every backend runs the same rule.
    """

    name: str
    train: dict[str, TrainSettings]
    spiking: dict[str, SpikeSettings]
    width: dict[str, dict[str, float]] = field(default_factory=dict)
    train_limit: int | None = None
    test_limit: int | None = None
    offline_fraction: float = 1.0
    frame_window_us: int = 3000
    binary_columns: int = 100
    networks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    threshold_candidates: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
    curve_samples: int | None = 1000
    calib_samples: int = 500
    backends: tuple[str, ...] = ("reference", "snntorch", "norse", "brian2")
    backend_samples: int | None = None
    backend_sample_limits: dict[str, int] = field(default_factory=dict)
    backend_networks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sweep_T: tuple[int, ...] = (5, 10, 15, 20)
    sweep_thresholds: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    sweep_network: str = "cnn"
    sweep_epochs: int | None = None
    tsne_samples: int = 1000
    mae_samples: int = 200
    tsne_perplexities: tuple[int, ...] = (5, 50)
    encoding_layer: tuple[str, ...] = ("cifar10",)
    threshold_compare: str = "inclusive"
    description: str = ""

    def structure(self, dataset: str, network: str) -> str:
        """The Table-1 structure for ``dataset``/``network``, scaled by this preset's width factor."""
        key = f"{dataset.replace('-', '')}_{network}"
        if key not in TABLE1:
            raise SnnBridgeError(f"Table 1 has no {network} for {dataset} (has: "
                                 f"{', '.join(NETWORKS.get(dataset, ()))})")
        return scale_structure(TABLE1[key], self.width.get(dataset, {}).get(network, 1.0))

    def training(self, dataset: str, network: str | None = None) -> TrainSettings:
        """Training settings for ``dataset`` (a ``"<dataset>/<network>"`` entry wins)."""
        if network is not None and f"{dataset}/{network}" in self.train:
            return self.train[f"{dataset}/{network}"]
        try:
            return self.train[dataset]
        except KeyError:
            raise SnnBridgeError(f"preset '{self.name}' has no training settings for {dataset}") from None

    def spike(self, dataset: str, model: int | str, network: str | None = None) -> SpikeSettings:
        """SNN settings of Model-``model`` on ``dataset`` (a ``"<dataset>/<model>/<network>"`` entry wins)."""
        if network is not None and f"{dataset}/{model}/{network}" in self.spiking:
            return self.spiking[f"{dataset}/{model}/{network}"]
        try:
            return self.spiking[f"{dataset}/{model}"]
        except KeyError:
            raise SnnBridgeError(f"preset '{self.name}' has no SNN settings for Model-{model} on {dataset}") from None

    def as_dict(self) -> dict:
        return asdict(self)


def scale_structure(structure: str, width: float) -> str:
    """Multiply every conv channel count and hidden FC size by ``width`` (at least 2); the classifier stays."""
    if width == 1.0:
        return structure
    tokens = structure.split("-")
    out = []
    for i, tok in enumerate(tokens):
        last = i == len(tokens) - 1
        m = re.fullmatch(r"(\d+)(C\d+(?:s\d+)?|FC)?", tok)
        if m and not last and tok.lower() != "input":
            out.append(f"{max(2, int(round(int(m[1]) * width)))}{m[2] or ''}")
        else:
            out.append(tok)
    return "-".join(out)


# --------------------------------------------------------------------------- the paper (Tables 1-3, §4.1)
_PAPER_TRAIN = {
    "mnist": TrainSettings(epochs=150, batch_size=50, optimizer="adam", lr=1e-4),
    "cifar10": TrainSettings(epochs=150, batch_size=50, optimizer="sgd", lr=0.1, lr_step=35, lr_gamma=0.1),
    "nmnist": TrainSettings(epochs=200, batch_size=50, optimizer="adam", lr=1e-4),
    "dvs-cifar10": TrainSettings(epochs=200, batch_size=50, optimizer="sgd", lr=0.1, lr_step=35, lr_gamma=0.1),
}
_PAPER_SPIKING = {
    # Table 2: Model-2 (IF, converted) and Model-3 (LIF, STBP)
    "mnist/2": SpikeSettings(T=500, threshold=2.0, decay=0.0),
    "mnist/3": SpikeSettings(T=20, threshold=0.5, decay=0.25, surrogate_width=0.5),
    "cifar10/2": SpikeSettings(T=1000, threshold=2.5, decay=0.0),
    "cifar10/3": SpikeSettings(T=15, threshold=0.3, decay=0.3, surrogate_width=0.5),
    # Table 3: Model-6 (LIF, STBP)
    "nmnist/6": SpikeSettings(T=15, threshold=0.3, decay=0.25, surrogate_width=0.25),
    "dvs-cifar10/6": SpikeSettings(T=10, threshold=0.25, decay=0.3, surrogate_width=0.25),
}

PAPER = Preset(
    name="paper", train=_PAPER_TRAIN, spiking=_PAPER_SPIKING, frame_window_us=3000, binary_columns=100,
    backend_samples=1000, backend_sample_limits={"brian2": 100}, backend_networks={"brian2": ("mlp",)},
    sweep_T=(5, 10, 15, 20, 25), sweep_thresholds=(0.1, 0.15, 0.25, 0.3, 0.5, 1.0), sweep_network="cnn",
    tsne_samples=1000,
    description="Deng et al. 2020 as published: Table-1 structures, Tables 2-3 settings, 150/200 epochs, full "
                "datasets (GPU-scale: days on CPU).")

QUICK = Preset(
    name="quick",
    train={"mnist": TrainSettings(epochs=6, optimizer="adam", lr=3e-3, snn_lr=5e-4),
           "mnist/cnn": TrainSettings(epochs=6, optimizer="adam", lr=5e-3, snn_lr=2e-3),
           "cifar10": TrainSettings(epochs=6, optimizer="sgd", lr=0.1, lr_step=4),
           "nmnist": TrainSettings(epochs=10, optimizer="adam", lr=1e-3, snn_lr=1e-3),
           "nmnist/cnn": TrainSettings(epochs=6, optimizer="adam", lr=5e-3, snn_lr=2e-3),
           "dvs-cifar10": TrainSettings(epochs=6, optimizer="sgd", lr=0.1, lr_step=4)},
    spiking={**_PAPER_SPIKING,
             "mnist/2": SpikeSettings(T=100, threshold=2.0, decay=0.0),
             "cifar10/2": SpikeSettings(T=100, threshold=2.5, decay=0.0),
             "mnist/3/cnn": SpikeSettings(T=10, threshold=0.5, decay=0.25, surrogate_width=0.5)},
    width={"mnist": {"cnn": 0.25}, "cifar10": {"cnn": 0.125}, "nmnist": {"cnn": 0.125},
           "dvs-cifar10": {"cnn": 0.125}},
    networks={"mnist": ("mlp",), "nmnist": ("mlp",)},
    train_limit=5_000, test_limit=1_000,
    offline_fraction=1.0, frame_window_us=3000, binary_columns=31, calib_samples=300, curve_samples=1000,
    backend_samples=200, backend_sample_limits={"brian2": 20}, backend_networks={"brian2": ("mlp",)},
    sweep_T=(5, 15, 25), sweep_thresholds=(0.15, 0.3, 0.6), sweep_network="mlp", sweep_epochs=6,
    tsne_samples=300, tsne_perplexities=(5, 50), encoding_layer=("cifar10",),
    description="2 CPU cores: the Table-1 MLPs at full width on MNIST (5,000 train / 1,000 test, 6 epochs) and "
                "N-MNIST (10 epochs); CNNs (1/4-1/8 width) only on the offline digits or with --networks cnn; "
                "Model-2 T=100, Model-6 as Table 3 (T=15 windows of 3 ms), Model-4 images of 31 columns "
                "(≈10 ms); Adam (ANNs 3e-3, SNNs 5e-4 on MNIST; 1e-3 on N-MNIST); Brian2 on the MLPs only.")

TEST = replace(
    QUICK, name="test",
    train={k: replace(v, epochs=1, batch_size=25) for k, v in QUICK.train.items()},
    spiking={**QUICK.spiking, "mnist/2": SpikeSettings(T=20, threshold=2.0, decay=0.0),
             "mnist/3": SpikeSettings(T=4, threshold=0.5, decay=0.25, surrogate_width=0.5),
             "nmnist/6": SpikeSettings(T=4, threshold=0.3, decay=0.25, surrogate_width=0.25)},
    width={d: {"mlp": 0.0625, "cnn": 0.0625} for d in PAPER_DATASETS},
    networks={}, train_limit=100, test_limit=40, offline_fraction=0.06, binary_columns=32, calib_samples=50,
    curve_samples=40, threshold_candidates=(1.0,),
    backends=("reference",), backend_samples=20, backend_sample_limits={}, backend_networks={},
    sweep_T=(2, 4), sweep_thresholds=(0.3,), sweep_network="mlp", sweep_epochs=1,
    tsne_samples=40, tsne_perplexities=(5,), mae_samples=20, encoding_layer=(),
    description="Seconds: tiny networks, ~100 samples, 1 epoch (for tests).")

PRESETS = {p.name: p for p in (PAPER, QUICK, TEST)}


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name`` (``paper``, ``quick``, ``test``)."""
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise SnnBridgeError(f"unknown preset '{name}'; known: {', '.join(PRESETS)}") from None
