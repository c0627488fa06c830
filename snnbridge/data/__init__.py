"""Datasets and data conversions: embedded digits, MNIST/CIFAR10, N-MNIST/DVS-CIFAR10, an event-camera
emulator, event → frame binning and spike → image conversions.  Nothing is ever downloaded."""

from snnbridge.data.digits import load_digits, load_digits_mnist_like
from snnbridge.data.dvs_cifar10 import dvs_cifar10_available, load_dvs_cifar10
from snnbridge.data.emulator import (
    EmulatorConfig,
    compare_event_statistics,
    emulate_dataset,
    emulate_events,
    event_statistics,
    paired_event_statistics,
)
from snnbridge.data.errors import DataError, DatasetNotFoundError
from snnbridge.data.events import EVENT_DTYPE, EventDataset, check_events, events_to_frames, make_events
from snnbridge.data.nmnist import (
    load_nmnist,
    nmnist_available,
    read_nmnist_file,
    write_nmnist_file,
    write_nmnist_folder,
)
from snnbridge.data.spike_images import binary_image, intensity_image
from snnbridge.data.static import cifar10_available, load_cifar10, load_mnist, mnist_available

__all__ = [
    "EVENT_DTYPE", "DataError", "DatasetNotFoundError", "EmulatorConfig", "EventDataset", "binary_image",
    "check_events", "cifar10_available", "compare_event_statistics", "dvs_cifar10_available", "emulate_dataset",
    "emulate_events", "event_statistics", "events_to_frames", "intensity_image", "load_cifar10", "load_digits",
    "load_digits_mnist_like", "load_dvs_cifar10", "load_mnist", "load_nmnist", "make_events", "mnist_available",
    "nmnist_available", "paired_event_statistics", "read_nmnist_file", "write_nmnist_file", "write_nmnist_folder",
]
