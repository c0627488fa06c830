"""Event arrays: validation, binning into frames (hand-computed), datasets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnbridge.data import DataError, EventDataset, check_events, events_to_frames, make_events

SENSOR = (4, 3, 2)  # W, H, P


def _ev():
    # (x, y, t, p)
    return make_events(x=[0, 3, 3, 1, 2], y=[0, 2, 2, 1, 0], t=[0, 5, 9, 10, 25], p=[1, 0, 0, 1, 1])


def test_frames_dt_hand_computed():
    f = events_to_frames(_ev(), SENSOR, dt_us=10)
    assert f.shape == (3, 2, 3, 4) and f.dtype == torch.float32
    want = torch.zeros(3, 2, 3, 4)
    want[0, 1, 0, 0] = 1  # t=0 ON at (x0, y0)
    want[0, 0, 2, 3] = 2  # t=5, 9 OFF at (x3, y2)
    want[1, 1, 1, 1] = 1  # t=10
    want[2, 1, 0, 2] = 1  # t=25
    assert torch.equal(f, want)
    assert torch.equal(events_to_frames(_ev(), SENSOR, dt_us=10, mode="binary"), (want > 0).float())


def test_frames_T_truncates_and_pads():
    assert events_to_frames(_ev(), SENSOR, dt_us=10, T=2).shape[0] == 2
    f = events_to_frames(_ev(), SENSOR, dt_us=10, T=5)
    assert f.shape[0] == 5 and f[3:].sum() == 0 and f.sum() == 5


def test_frames_n_bins_cover_the_recording():
    f = events_to_frames(_ev(), SENSOR, n_bins=2)  # duration 26 µs: bins [0, 13), [13, 26)
    assert f.shape == (2, 2, 3, 4)
    assert f[0].sum() == 4 and f[1].sum() == 1
    g = events_to_frames(_ev(), SENSOR, n_bins=2, duration_us=100)  # everything falls in the first bin
    assert g[0].sum() == 5 and g[1].sum() == 0


def test_frames_need_exactly_one_binning():
    with pytest.raises(ValueError, match="exactly one"):
        events_to_frames(_ev(), SENSOR)
    with pytest.raises(ValueError, match="exactly one"):
        events_to_frames(_ev(), SENSOR, dt_us=1, n_bins=2)


def test_wrong_dtype_names_the_field():
    bad = np.zeros(3, dtype=[("x", "<i8"), ("y", "<i8"), ("ts", "<i8"), ("p", "<i8")])
    with pytest.raises(DataError, match="lack field 't'"):
        events_to_frames(bad, SENSOR, dt_us=10)
    with pytest.raises(DataError, match="structured numpy array"):
        check_events(np.zeros((3, 4)))
    strs = np.zeros(2, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "U2")])
    with pytest.raises(DataError, match="field 'p'"):
        check_events(strs)


def test_out_of_sensor_events_are_refused():
    ev = make_events([4], [0], [0], [1])
    with pytest.raises(DataError, match="field 'x'"):
        events_to_frames(ev, SENSOR, dt_us=10)


def test_tonic_cifar10dvs_dtype_is_accepted():
    ev = np.zeros(2, dtype=[("t", np.uint64), ("x", np.uint16), ("y", np.uint16), ("p", bool)])
    ev["t"], ev["x"], ev["y"], ev["p"] = [0, 3], [1, 2], [0, 2], [True, False]
    f = events_to_frames(ev, SENSOR, dt_us=10)
    assert f[0, 1, 0, 1] == 1 and f[0, 0, 2, 2] == 1


def test_empty_dataset_is_a_clear_error():
    with pytest.raises(DataError, match="empty"):
        EventDataset([], np.zeros(0), (34, 34, 2), "nothing")


def test_dataset_frames_share_the_time_axis():
    a = make_events([0, 1], [0, 0], [0, 90], [1, 1])
    b = make_events([0], [0], [10], [0])
    ds = EventDataset([a, b], np.array([0, 1]), SENSOR)
    f = ds.frames(n_bins=3)
    assert f.shape == (2, 3, 2, 3, 4)
    assert f[1, 0].sum() == 1 and f[0, 2].sum() == 1  # b's t=10 is early on the common 91 µs axis
    assert len(ds.subset([1])) == 1
