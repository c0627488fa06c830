"""Fast layer-by-layer evaluation for the reference executor: event-driven synapses, fused neurons.

The reference executor (:class:`~snnbridge.bridge.executor.ReferenceExecutor`) evaluates a feed-forward
graph layer by layer: each synaptic node once over all ``T·B`` frames ``[T·B, *shape]`` (step-major), each
neuron node as a loop over ``T``.  This module is that walk with these speed-ups, chosen per layer and
per chunk of steps (``strategy="auto"``):

* **Event-driven synapses.**  A synaptic layer whose input is sparse adds, for every non-zero input
  (an *event*), the weights that input drives, instead of multiplying the whole input with the whole
  weight matrix:

  - ``Linear``/``Affine``: ``embedding_bag`` sums, per row, the weight rows of the inputs that are
    non-zero (``event``); or, when most inputs of a sample stay silent over the whole chunk (rate-coded
    images: zero pixels never spike), one small dense product per sample over only the inputs active
    in that sample (``compact``: the gathered weights of the inputs that spiked, dense GEMM on them);
  - ``Conv2d`` (``groups=1``): every event adds, for each kernel row it reaches, one contiguous run of
    ``ceil(k/stride)`` outputs × ``C_out`` channels into a padded channels-last output (``index_add_``
    of rows ``ceil(k/stride)·C_out`` wide); dilated kernels scatter tap by tap;
  - ``SumPool2d``/``AvgPool2d``: every event adds its value to its window(s).

  The method is chosen from the **measured density** of the chunk's input with a cost model
  (:class:`CostModel`); dense kernels (BLAS / oneDNN) stay where they win.
* **Fused neuron update.**  LIF/IF/LI/I nodes with the reference's immediate reset (or none) run as one
  loop over ``T`` that updates the membrane in place, compares and resets with float 0/1 masks (which
  vectorise; ``bool`` masks do not) and writes the spikes as ``bool``.  The drive ``gain·x + bias`` is
  computed for all steps at once (elementwise, so it rounds as it does step by step); multiplications by
  an exact 1 and additions of an exact 0 are skipped.
* **Synapse → neuron fusion.**  A ``Conv2d`` whose only consumer is such a neuron (unit gain, zero bias)
  and whose output is not recorded hands its events to the neuron loop, which adds the events of step
  ``t`` straight into the membrane: the ``[T·B, C, H, W]`` drive is never built.
* **Compact spikes.**  Spike tensors travel as ``bool`` (a quarter of float32's memory traffic) and are
  cast only where a dense kernel needs them.

Exactness (``docs/benchmarks.md``, ``tests/test_executor_sparse.py``): the fused neuron update performs the
reference's operations in its order, so with dense synapses (``strategy="fused"``) every spike and
membrane equals the dense executor's (``torch.equal``; only the sign of a zero may differ).  Event-driven
sums add the same terms in another order than BLAS/oneDNN (and, fused into a neuron, add them into the
membrane one by one), so membranes may differ from the dense executor's in the last bits (float32 ~1e-6
relative); the spikes are checked to be identical at every node and step by the tests and by
``benchmarks/bench_executor.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph

STRATEGIES = ("dense", "fused", "auto", "event")
"""``dense``: today's node-by-node arithmetic (dense kernels, the generic step loop); ``fused``: dense
synaptic kernels + the fused neuron update (same values); ``auto``: per layer and chunk, event-driven
or dense by measured density; ``event``: event-driven wherever a node supports it (tests, benchmarks)."""

_EVENT_KINDS = ("Linear", "Affine", "Conv2d", "SumPool2d", "AvgPool2d")


@dataclass(frozen=True)
class CostModel:
    """Seconds per operation of each method on one CPU core (float32), used to choose per chunk.

    The defaults are rough figures measured on the project machine (AMD EPYC, MKL/oneDNN, one thread);
    only their ratios matter.  ``dense_mac``: one multiply-accumulate of a BLAS GEMM; ``conv_mac``: of a oneDNN
    convolution with few channels; ``event_add``: one weight added by ``embedding_bag`` / ``index_add_``;
    ``event``: the fixed cost of one event (finding it, its indices); ``call``: one kernel call.
    """

    dense_mac: float = 2.5e-11
    conv_mac: float = 1.2e-10
    event_add: float = 1.0e-9
    event: float = 6.0e-8
    call: float = 2.0e-5


@dataclass
class LayerStats:
    """What one synaptic node did in one run: method per chunk, input density, operations.

    ``adds`` / ``muls`` count the floating-point additions and multiplications of the synaptic
    arithmetic actually performed (a dense MAC is one of each; an event adds ``fan-out`` weights and
    multiplies them only when its value is not 1).
    """

    name: str
    kind: str
    methods: list[str] = field(default_factory=list)
    density: list[float] = field(default_factory=list)
    adds: float = 0.0
    muls: float = 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "methods": self.methods,
                "density": [round(d, 6) for d in self.density], "adds": self.adds, "muls": self.muls}


# --------------------------------------------------------------------------- helpers


def as_float(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` in ``dtype`` (spikes stored as ``bool`` become 0/1)."""
    return x if x.dtype == dtype else x.to(dtype)


def _binary(x: torch.Tensor) -> bool:
    return x.dtype == torch.bool


def _nnz(x: torch.Tensor) -> int:
    return int(torch.count_nonzero(x))


def _all_equal(t: torch.Tensor | None, value: float) -> bool:
    return t is not None and bool((t == value).all())


def _nonzero_bool(b: torch.Tensor) -> torch.Tensor:
    """Flat indices of the ``True`` entries of a contiguous ``bool`` tensor, ascending.

    Scans 8 entries per 64-bit word first (``nonzero`` on a sparse ``bool`` tensor costs per entry).
    """
    flat = b.reshape(-1)
    n = flat.numel()
    head = n - n % 8
    out = []
    if head:
        words = flat[:head].view(torch.int64)
        wi = words.nonzero().squeeze(1)
        sub = flat[:head].view(-1, 8).index_select(0, wi).nonzero()
        out.append(wi.index_select(0, sub[:, 0]) * 8 + sub[:, 1])
    if head < n:
        out.append(flat[head:].nonzero().squeeze(1) + head)
    return out[0] if len(out) == 1 else torch.cat(out)


def _unravel(flat: torch.Tensor, shape) -> list[torch.Tensor]:
    cols = []
    for size in reversed(shape):
        cols.append(flat % size)
        flat = torch.div(flat, size, rounding_mode="floor")
    return cols[::-1]


def _events(x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Indices (one tensor per logical dim) and values (``None`` when all are 1) of the non-zeros of ``x``.

    Works on any strides: a channels-last 4-D tensor is scanned in its memory order.
    """
    perm = list(range(x.dim()))
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        perm = [0, 2, 3, 1]
    xp = x.permute(perm)
    if not xp.is_contiguous():
        xp = xp.contiguous()
    flat = _nonzero_bool(xp if _binary(xp) else xp != 0)
    idx = _unravel(flat, xp.shape)
    cols: list[torch.Tensor] = [idx[0]] * x.dim()
    for j, d in enumerate(perm):
        cols[d] = idx[j]
    vals = None
    if not _binary(x):
        vals = xp.reshape(-1).index_select(0, flat)
        if bool((vals == 1).all()):
            vals = None
    return cols, vals


def _out_size(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _pad_same(k: int, d: int) -> int:
    return (d * (k - 1)) // 2


# --------------------------------------------------------------------------- synaptic layers


class SynapticLayer:
    """A synaptic node (``Linear``, ``Affine``, ``Conv2d``, ``SumPool2d``, ``AvgPool2d``) with its methods.

    ``__call__(x [M, *in])`` → ``[M, *out]`` in the run dtype; ``x`` may be ``bool`` spikes.  ``T`` and
    ``B`` (``M = T·B``, step-major) let the ``compact`` method group rows by sample.
    """

    def __init__(self, node, kind: str, params: Mapping[str, torch.Tensor], in_shape, out_shape,
                 dtype: torch.dtype, cost: CostModel) -> None:
        self.node, self.kind, self.params = node, kind, params
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        self.dtype, self.cost = dtype, cost
        self.n_in = int(np.prod(self.in_shape))
        self.n_out = int(np.prod(self.out_shape))
        self.event_ok = True
        if kind in ("Linear", "Affine"):
            w = params["weight"]
            self.wt = w.t().contiguous()  # [K, N]: row k = the weights input k drives
            self.bias = params.get("bias")
            self.fan_in = w.shape[1]
            self.mean_fan_out = float(w.shape[0])
        elif kind == "Conv2d":
            p = sem.conv2d_params(node)
            w = params["weight"]
            self.event_ok = p["groups"] == 1
            self.stride, self.dil = p["stride"], p["dilation"]
            kh, kw = w.shape[2:]
            pad = p["padding"]
            if pad == "valid":
                pad = (0, 0)
            elif pad == "same":
                pad = (_pad_same(kh, self.dil[0]), _pad_same(kw, self.dil[1]))
                self.event_ok = self.event_ok and self.stride == (1, 1)
            self.pad, self.k = pad, (kh, kw)
            self.taps = w.permute(2, 3, 1, 0).contiguous()  # [kh, kw, C_in, C_out]
            self.bias = params.get("bias")
            self.fan_in = int(np.prod(w.shape[1:]))
            self.mean_fan_out = self.n_out * self.fan_in / self.n_in
        else:  # pools
            self.k, self.stride, self.pad = sem.pool_params(node)
            self.dil = (1, 1)
            self.fan_in = self.k[0] * self.k[1]
            self.mean_fan_out = self.n_out * self.fan_in / self.n_in
        self.dense_macs = self.n_out * self.fan_in  # per row

    # ----------------------------------------------------------------- choice
    def choose(self, x: torch.Tensor, strategy: str, T: int, B: int) -> tuple[str, float, Any]:
        """``(method, density, extra)`` for input chunk ``x [M, *in]``; ``extra`` is what the method reuses."""
        M = x.shape[0]
        nnz = _nnz(x)
        density = nnz / max(1, x.numel())
        if strategy == "fused" or not self.event_ok:
            return "dense", density, None
        if nnz == 0:
            return "empty", density, None
        if strategy == "event":
            return "event", density, None
        c = self.cost
        per_mac = c.dense_mac if self.kind in ("Linear", "Affine") else c.conv_mac
        dense = M * self.dense_macs * per_mac + c.call
        if self.kind in ("SumPool2d", "AvgPool2d"):
            dense = M * self.n_in * c.event_add + c.call  # cast + a memory-bound sweep over the input
        taps = self.fan_in if self.kind in ("Conv2d", "SumPool2d", "AvgPool2d") else 1
        event = nnz * (c.event + self.mean_fan_out * c.event_add) + taps * 4 * c.call
        best, how = min((dense, "dense"), (event, "event"))
        if self.kind in ("Linear", "Affine") and density < 0.6 and M == T * B and B > 1:
            act = (x.reshape(T, B, -1) != 0).any(0)  # [B, K]: inputs active in each sample
            cols = int(act.sum())
            compact = T * cols * self.mean_fan_out * c.dense_mac * 1.3 + B * 3 * c.call
            if compact < best:
                return "compact", density, act
        return how, density, None

    # ----------------------------------------------------------------- methods
    def dense(self, x: torch.Tensor) -> torch.Tensor:
        return sem.stateless_forward(self.node, as_float(x, self.dtype), self.params)

    def empty(self, x: torch.Tensor) -> torch.Tensor:
        """All inputs zero: the bias (or 0) everywhere."""
        M = x.shape[0]
        out = torch.zeros((M,) + self.out_shape, dtype=self.dtype, device=x.device)
        if self.kind in ("Affine", "Conv2d") and self.bias is not None:
            b = self.bias if self.kind == "Affine" else self.bias.reshape(-1, 1, 1)
            out += b
        return out

    def event(self, x: torch.Tensor, stats: LayerStats) -> torch.Tensor:
        if self.kind in ("Linear", "Affine"):
            return self._event_linear(x, stats)
        if self.kind == "Conv2d":
            return self._event_conv(x, stats)
        return self._event_pool(x, stats)

    def _event_linear(self, x: torch.Tensor, stats: LayerStats) -> torch.Tensor:
        M, K = x.shape[0], self.fan_in
        (rows, cols), vals = _events(x.reshape(M, K))
        offsets = torch.searchsorted(rows, torch.arange(M, device=x.device))
        y = F.embedding_bag(cols, self.wt, offsets, mode="sum", per_sample_weights=vals)
        n = rows.numel()
        stats.adds += n * self.wt.shape[1]
        if vals is not None:
            stats.muls += n * self.wt.shape[1]
        if self.bias is not None:
            y += self.bias
            stats.adds += M * self.wt.shape[1]
        return y

    def compact(self, x: torch.Tensor, act: torch.Tensor, T: int, B: int, stats: LayerStats) -> torch.Tensor:
        """Per sample, one product over the inputs active in that sample at some step: ``[T, |A_b|] @ [|A_b|, N]``."""
        N = self.wt.shape[1]
        xs = as_float(x, self.dtype).reshape(T, B, -1)
        y = torch.empty((B, T, N), dtype=self.dtype, device=x.device)
        macs = 0
        for b in range(B):
            idx = act[b].nonzero().squeeze(1)
            if idx.numel() == 0:
                y[b].zero_()
                if self.bias is not None:
                    y[b] += self.bias
                continue
            xb = xs[:, b].index_select(1, idx)
            wb = self.wt.index_select(0, idx)
            if self.bias is not None:
                torch.addmm(self.bias, xb, wb, out=y[b])
            else:
                torch.mm(xb, wb, out=y[b])
            macs += T * idx.numel() * N
        stats.adds += macs + (T * B * N if self.bias is not None else 0)
        stats.muls += macs
        return y.transpose(0, 1).reshape(T * B, N)

    def _tap_table(self, n: int, k: int, s: int, p: int, d: int, n_out: int, device):
        """Per input coordinate ``0..n-1``: the ``(output coordinate, tap, valid)`` it reaches, ``[n, L]`` each."""
        pos = torch.arange(n, device=device).unsqueeze(1)
        j = torch.arange(k, device=device).unsqueeze(0)
        num = pos + p - j * d
        o = torch.div(num, s, rounding_mode="floor")
        ok = (num >= 0) & (o < n_out) & ((num - o * s) == 0)
        L = int(ok.sum(1).max()) if ok.numel() else 0
        order = torch.argsort((~ok).to(torch.int8), dim=1, stable=True)[:, :max(L, 1)]
        return o.gather(1, order), j.expand_as(o).gather(1, order), ok.gather(1, order)

    def conv_pairs(self, x: torch.Tensor, stats: LayerStats) -> tuple[torch.Tensor, torch.Tensor]:
        """Event-driven synapses of a Conv2d on ``x [M, C_in, H, W]``: ``(rows, src)`` such that the output
        ``[M·Ho·Wo, C_out]`` (channels last, bias excluded) is ``index_add_(0, rows, src)``; rows grouped by frame."""
        C_in, H, W = self.in_shape
        C_out, Ho, Wo = self.out_shape
        (n, c, yy, xx), vals = _events(x)
        if not hasattr(self, "_tables"):
            self._tables = (self._tap_table(H, self.k[0], self.stride[0], self.pad[0], self.dil[0], Ho, x.device),
                            self._tap_table(W, self.k[1], self.stride[1], self.pad[1], self.dil[1], Wo, x.device),
                            self.taps.reshape(-1, C_out))
        (toy, tky, tvy), (tox, tkx, tvx), table = self._tables
        oy, ky, vy = toy[yy], tky[yy], tvy[yy]  # [E, Ly]
        ox, kx, vx = tox[xx], tkx[xx], tvx[xx]  # [E, Lx]
        rows = ((n * (Ho * Wo)).view(-1, 1, 1) + (oy * Wo).unsqueeze(2) + ox.unsqueeze(1))
        tap = ((ky * self.k[1]).unsqueeze(2) + kx.unsqueeze(1)) * C_in + c.view(-1, 1, 1)
        ok = vy.unsqueeze(2) & vx.unsqueeze(1)
        if bool(ok.all()):
            rows, tap = rows.reshape(-1), tap.reshape(-1)
            rep = None
        else:
            rows, tap = rows[ok], tap[ok]
            rep = ok.sum((1, 2))
        src = table.index_select(0, tap)
        if vals is not None:
            v = vals.repeat_interleave(ok.shape[1] * ok.shape[2]) if rep is None else vals.repeat_interleave(rep)
            src = src * v.unsqueeze(1)
            stats.muls += src.numel()
        stats.adds += src.numel()
        return rows, src

    def _segments_setup(self, device) -> None:
        """Geometry and weight table of the segment scatter (dilation 1): every event adds, per kernel row it
        reaches, one run of ``Lx`` consecutive outputs × ``C_out`` channels (contiguous in a padded,
        channels-last output ``[M, Hp, Wp, C_out]``)."""
        (kh, kw), (sh, sw) = self.k, self.stride
        C_in, H, W = self.in_shape
        C_out, Ho, Wo = self.out_shape
        Ly, Lx = -(-kh // sh), -(-kw // sw)
        Hp = max(Ho + Ly - 1, (H - 1 + self.pad[0]) // sh + Ly)
        Wp = max(Wo + Lx - 1, (W - 1 + self.pad[1]) // sw + Lx)
        Wp = -(-Wp // Lx) * Lx
        w = self.params["weight"]
        table = torch.zeros((sh, Ly, sw, C_in, Lx, C_out), dtype=self.dtype, device=device)
        for ry in range(sh):
            for jy in range(Ly):
                ky = ry + jy * sh
                for rx in range(sw):
                    for q in range(Lx):
                        kx = rx + (Lx - 1 - q) * sw
                        if ky < kh and kx < kw:
                            table[ry, jy, rx, :, q, :] = w[:, :, ky, kx].t()
        self._seg = (Ly, Lx, Hp, Wp, table.reshape(-1, Lx * C_out))

    def segments(self, x: torch.Tensor, stats: LayerStats) -> list[tuple]:
        """Per class ``m`` (segment start column mod ``Lx``): ``(frame, rows, taps, vals)``; ``rows`` index the
        padded output viewed from element ``m·C_out`` as ``[-1, Lx·C_out]``, ``taps`` the weight table
        (:meth:`seg_src`), ``vals`` the event values (``None``: all 1); grouped by frame (ascending)."""
        if not hasattr(self, "_seg"):
            self._segments_setup(x.device)
        Ly, Lx, Hp, Wp, table = self._seg
        C_in = self.in_shape[0]
        (n, c, yy, xx), vals = _events(x)
        sh, sw = self.stride
        by, ry = torch.div(yy + self.pad[0], sh, rounding_mode="floor"), (yy + self.pad[0]) % sh
        bx, rx = torch.div(xx + self.pad[1], sw, rounding_mode="floor"), (xx + self.pad[1]) % sw
        jy = torch.arange(Ly, device=x.device)
        oyp = (by + (Ly - 1)).unsqueeze(1) - jy  # [E, Ly] padded output row
        tidx = (((ry * Ly).unsqueeze(1) + jy) * sw + rx.unsqueeze(1)) * C_in + c.unsqueeze(1)
        out = []
        m_all = bx % Lx
        for m in range(Lx):
            sel = (m_all == m).nonzero().squeeze(1) if Lx > 1 else None

            def pick(t: torch.Tensor, sel: torch.Tensor | None = sel) -> torch.Tensor:
                return t if sel is None else t.index_select(0, sel)

            nm, bxm, oym, tm = pick(n), pick(bx), pick(oyp), pick(tidx)
            rows = (((nm * Hp).unsqueeze(1) + oym) * Wp + (bxm - m).unsqueeze(1)) // Lx
            vm = None if vals is None else pick(vals).repeat_interleave(Ly)
            k = tm.numel() * Lx * self.out_shape[0]
            stats.adds += k
            stats.muls += k if vm is not None else 0
            out.append((nm, rows.reshape(-1), tm.reshape(-1), vm))
        return out

    def seg_src(self, taps: torch.Tensor, vals: torch.Tensor | None) -> torch.Tensor:
        """The weight runs ``[n, Lx·C_out]`` the segment events add (scaled by the event values)."""
        src = self._seg[4].index_select(0, taps)
        return src if vals is None else src * vals.unsqueeze(1)

    def _seg_view(self, buf: torch.Tensor, m: int) -> torch.Tensor:
        Ly, Lx, Hp, Wp, _ = self._seg
        C = self.out_shape[0]
        flat = buf.reshape(-1)
        n_rows = (flat.numel() - m * C) // (Lx * C)
        return flat[m * C:m * C + n_rows * Lx * C].view(n_rows, Lx * C)

    def _crop(self, buf: torch.Tensor) -> torch.Tensor:
        """The logical output ``[M, C_out, Ho, Wo]`` (channels last) inside the padded buffer ``[M, Hp, Wp, C_out]``."""
        Ly, Lx = self._seg[:2]
        _, Ho, Wo = self.out_shape
        return buf[:, Ly - 1:Ly - 1 + Ho, Lx - 1:Lx - 1 + Wo, :].permute(0, 3, 1, 2)

    @property
    def segment_ok(self) -> bool:
        return self.kind == "Conv2d" and self.event_ok and self.dil == (1, 1) and min(self.pad) >= 0

    def _event_conv(self, x: torch.Tensor, stats: LayerStats) -> torch.Tensor:
        M = x.shape[0]
        C_out, Ho, Wo = self.out_shape
        if self.segment_ok:
            segs = self.segments(x, stats)
            Ly, Lx, Hp, Wp, _ = self._seg
            buf = torch.zeros((M, Hp, Wp, C_out), dtype=self.dtype, device=x.device)
            for m, (_, rows, taps, vals) in enumerate(segs):
                self._seg_view(buf, m).index_add_(0, rows, self.seg_src(taps, vals))
            out = self._crop(buf)
            if self.bias is not None:
                out = out + self.bias.reshape(-1, 1, 1)
                stats.adds += out.numel()
            return out
        rows, src = self.conv_pairs(x, stats)
        out = torch.zeros((M * Ho * Wo, C_out), dtype=self.dtype, device=x.device)
        if self.bias is not None:
            out += self.bias
            stats.adds += M * Ho * Wo * C_out
        out.index_add_(0, rows, src)
        return out.view(M, Ho, Wo, C_out).permute(0, 3, 1, 2)  # logical [M, C_out, Ho, Wo], channels last

    def _event_pool(self, x: torch.Tensor, stats: LayerStats) -> torch.Tensor:
        M = x.shape[0]
        C, H, W = self.in_shape
        _, Ho, Wo = self.out_shape
        (n, c, yy, xx), vals = _events(x)
        if not hasattr(self, "_tables"):
            self._tables = (self._tap_table(H, self.k[0], self.stride[0], self.pad[0], 1, Ho, x.device),
                            self._tap_table(W, self.k[1], self.stride[1], self.pad[1], 1, Wo, x.device))
        (toy, _, tvy), (tox, _, tvx) = self._tables
        oy, vy, ox, vx = toy[yy], tvy[yy], tox[xx], tvx[xx]
        idx = (((n * C + c) * (Ho * Wo)).view(-1, 1, 1) + (oy * Wo).unsqueeze(2) + ox.unsqueeze(1))
        ok = vy.unsqueeze(2) & vx.unsqueeze(1)
        if vals is None:
            v = torch.ones(1, dtype=self.dtype, device=x.device).expand(idx.numel())
        else:
            v = vals.to(self.dtype).view(-1, 1, 1).expand_as(idx).reshape(-1)
        if not bool(ok.all()):
            keep = ok.reshape(-1)
            idx, v = idx.reshape(-1)[keep], v[keep]
        out = torch.zeros(M * C * Ho * Wo, dtype=self.dtype, device=x.device)
        out.index_add_(0, idx.reshape(-1), v.contiguous())
        stats.adds += idx.numel()
        out = out.view(M, C, Ho, Wo)
        if self.kind == "AvgPool2d":
            out = out / (self.k[0] * self.k[1])  # avg_pool2d divides the window sum (count_include_pad=True)
            stats.muls += out.numel()
        return out

    def run(self, x: torch.Tensor, strategy: str, T: int, B: int, chunk: int | None,
            stats: LayerStats) -> torch.Tensor:
        """Evaluate on ``x [T·B, *in]`` in chunks of ``chunk`` steps, choosing a method per chunk."""
        M = x.shape[0]
        steps = T if chunk is None or chunk >= T else chunk
        parts = []
        for t0 in range(0, T, steps):
            t1 = min(T, t0 + steps)
            xc = x[t0 * B:t1 * B] if (t0, t1) != (0, T) else x
            how, density, extra = self.choose(xc, strategy, t1 - t0, B)
            stats.methods.append(how)
            stats.density.append(density)
            if how == "dense":
                y = self.dense(xc)
                rows = xc.shape[0]
                stats.adds += rows * self.dense_macs
                if self.kind in ("Linear", "Affine", "Conv2d"):
                    stats.muls += rows * self.dense_macs
                    if self.bias is not None:
                        stats.adds += rows * self.n_out
                elif self.kind == "AvgPool2d":
                    stats.muls += rows * self.n_out
            elif how == "empty":
                y = self.empty(xc)
            elif how == "compact":
                y = self.compact(xc, extra, t1 - t0, B, stats)
            else:
                y = self.event(xc, stats)
            parts.append(y)
        if len(parts) == 1:
            return parts[0]
        return torch.cat([p.contiguous() for p in parts]).reshape((M,) + self.out_shape)


# --------------------------------------------------------------------------- fused neurons


def fused_ok(node) -> bool:
    """Whether the fused update reproduces this neuron node (LIF/IF/LI/I, immediate reset or none)."""
    if node.coeff is None or node.kind not in ("LIF", "IF", "LI", "I") or node.coeff.syn_decay is not None:
        return False
    return node.coeff.threshold is None or node.options.reset_timing == "immediate" or node.reset == "none"


def _scalar(t: torch.Tensor | None) -> float | None:
    """The single value of ``t`` when all its elements are equal (a Python float compares and fills faster)."""
    if t is None or t.numel() == 0:
        return None
    v = t.reshape(-1)[0]
    return float(v) if bool((t == v).all()) else None


EVENT_ROWS = 1 << 20
"""Segment rows (events × kernel rows) built at once by the fused conv → neuron path: bounds its memory."""


@dataclass
class EventDrive:
    """A Conv2d's output not materialised: its input ``x [T·B, C_in, H, W]`` and bias; :func:`fused_neuron` builds
    the event segments (:meth:`SynapticLayer.segments`) ``steps`` steps at a time and adds them into the
    membrane step by step."""

    layer: SynapticLayer
    x: torch.Tensor
    bias: torch.Tensor | None
    stats: LayerStats
    steps: int

    def segments(self, t0: int, t1: int, B: int) -> list[tuple]:
        """The segments of steps ``t0 .. t1-1`` (frames counted from ``t0·B``)."""
        return self.layer.segments(self.x[t0 * B:t1 * B], self.stats)


def fused_neuron(node, x: torch.Tensor | EventDrive, T: int, B: int, want_v: bool,
                 drive_bound: float | None) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """All ``T`` steps of a LIF/IF/LI/I node on ``x [T·B, *shape]`` → ``(out [T, B, ...], membrane or None)``.

    Spiking nodes return ``bool`` spikes.  The arithmetic is :func:`~snnbridge.bridge.semantics.neuron_step`'s
    (``v = decay·v + (gain·x + bias)``, then the semantics' in-place forms ``semantics.fire_into`` and
    ``semantics.reset_inplace``), with the drive for all steps
    computed at once and exact identities skipped (the sign of a zero may differ).  ``drive_bound`` (a
    bound on ``|x|``, ``None`` to measure it) proves that the membrane cannot overflow (where a zero reset
    of an infinite membrane would differ); otherwise ``None`` is returned and the caller runs the step loop.

    With an :class:`EventDrive` (unit gain, zero bias) the synaptic events of step ``t`` are added
    straight into the membrane (``v = decay·v + b_syn + Σ w``: the same terms in another order).
    """
    c, dtype = node.coeff, node.dtype
    decay_one = _all_equal(c.decay, 1.0)
    events = isinstance(x, EventDrive)
    d = None
    if not events:
        d = as_float(x, dtype)
        if not _all_equal(c.gain, 1.0):
            d = c.gain * d
        if not _all_equal(c.bias, 0.0):
            d = d + c.bias
        d = d.unflatten(0, (T, B))
    state = node.init_state(B)
    spiking = c.threshold is not None
    if spiking and node.reset == "zero":
        if drive_bound is None:
            drive_bound = float(d.abs().max()) if d is not None and d.numel() else 0.0
        gmax = float(c.gain.abs().max())
        vmax = float(state.v.abs().max()) + T * (drive_bound * max(gmax, 1.0) + float(c.bias.abs().max()))
        if not (bool((c.decay.abs() <= 1).all()) and np.isfinite(vmax) and vmax < torch.finfo(dtype).max / 4):
            return None
    decay = _scalar(c.decay)
    decay = c.decay if decay is None else decay
    thr = fthr = v_reset = None
    if spiking:
        thr = _scalar(c.threshold)
        thr = c.threshold if thr is None else thr
        fthr = _scalar(c.fire_threshold)
        fthr = c.fire_threshold if fthr is None else fthr
        v_reset = _scalar(c.v_reset) if c.v_reset is not None else 0.0
        v_reset = c.v_reset if v_reset is None else v_reset
    if events:
        lay = x.layer
        Ly, Lx, Hp, Wp, _ = lay._seg
        C, Ho, Wo = lay.out_shape
        dev = state.v.device
        uniform = spiking and all(isinstance(q, float) for q in (decay, thr, fthr, v_reset))
        vbuf = torch.zeros((B, Hp, Wp, C), dtype=dtype, device=dev)
        crop = (slice(None), slice(Ly - 1, Ly - 1 + Ho), slice(Lx - 1, Lx - 1 + Wo))
        v_log = vbuf[crop].permute(0, 3, 1, 2)  # logical [B, C, Ho, Wo] view of the padded membrane
        v_log.copy_(state.v)
        v = vbuf if uniform else v_log  # uniform constants: update the whole padded buffer (contiguous)
        views = [lay._seg_view(vbuf, m) for m in range(Lx)]
        per_step = B * Hp * Wp // Lx
        K = x.steps
        bias = None if x.bias is None else (x.bias if uniform else x.bias.reshape(-1, 1, 1))
        S_cl = torch.empty((T, B, Ho, Wo, C), dtype=torch.bool, device=dev) if spiking else None
        V_cl = torch.empty((T, B, Ho, Wo, C), dtype=dtype, device=dev) if (want_v or not spiking) else None
        S = None if S_cl is None else S_cl.permute(0, 1, 4, 2, 3)
        V = None if V_cl is None else V_cl.permute(0, 1, 4, 2, 3)
    else:
        v = torch.empty_like(d[0]).copy_(state.v)
        V = torch.empty_like(d) if (want_v or not spiking) else None
        S = torch.empty_like(d, dtype=torch.bool) if spiking else None
    s_f = torch.empty_like(v) if spiking else None
    keep_f = torch.empty_like(v) if spiking and node.reset == "zero" else None
    for t in range(T):
        if not decay_one:
            v.mul_(decay)
        if events:
            if bias is not None:
                v.add_(bias)
            if t % K == 0:  # the next chunk's events
                t0 = t
                segs = x.segments(t, min(T, t + K), B)
                steps = torch.arange(min(T, t + K) - t + 1, device=dev) * B
                cuts = [torch.searchsorted(f, steps).mul_(Ly).tolist() for f, _, _, _ in segs]
            for (_, rows, taps, vals), cut, view in zip(segs, cuts, views):
                a, b = cut[t - t0], cut[t - t0 + 1]
                if b > a:
                    view.index_add_(0, rows[a:b] - (t - t0) * per_step,
                                    lay.seg_src(taps[a:b], None if vals is None else vals[a:b]))
            if V is not None:
                V[t].copy_(v_log)
        else:
            v.add_(d[t])
            if V is not None:
                V[t].copy_(v)
        if not spiking:
            continue
        sem.fire_into(v, fthr, s_f)
        if events:
            S_cl[t].copy_(s_f[crop] if uniform else s_f.permute(0, 2, 3, 1))
        else:
            S[t].copy_(s_f)
        if keep_f is not None:
            torch.le(v, fthr, out=keep_f)
        sem.reset_inplace(v, s_f, keep_f, node.reset, thr, v_reset)
    if not spiking:
        return V, V
    return S, V


# --------------------------------------------------------------------------- the walk


class FastWalk:
    """Layer-by-layer evaluation of a feed-forward graph with the executor's nodes (see module doc).

    Plugged into :func:`~snnbridge.bridge.walk.run_graph` as its ``layerwise`` function; ``stats``
    holds the last run's :class:`LayerStats` per synaptic node.
    """

    def __init__(self, fg: FlatGraph, nodes: Mapping[str, Any], strategy: str, dtype: torch.dtype,
                 chunk: int | None = None, cost: CostModel | None = None) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        self.fg, self.nodes, self.strategy, self.dtype, self.chunk = fg, nodes, strategy, dtype, chunk
        self.cost = cost or CostModel()
        self.layers: dict[str, SynapticLayer] = {}
        for name in fg.order:
            kind = fg.type_of(name)
            if kind in _EVENT_KINDS:
                n = nodes[name]
                self.layers[name] = SynapticLayer(n.node, kind, n.params, fg.in_shapes[name], fg.out_shapes[name],
                                                  dtype, self.cost)
        self.stats: dict[str, LayerStats] = {}

    def _bound(self, name: str, bounds: Mapping[str, float | None], x: torch.Tensor) -> float | None:
        """A bound on ``|output|`` of node ``name`` from its input's bound (``None``: unknown)."""
        kind = self.fg.type_of(name)
        ps = self.fg.preds[name]
        if x.dtype == torch.bool:
            b_in: float | None = 1.0
        elif ps and all(bounds.get(p) is not None for p in ps):
            b_in = float(sum(bounds[p] for p in ps))  # type: ignore[misc]
        else:
            return None
        if kind in ("Input", "Output", "Flatten"):
            return b_in
        layer = self.layers.get(name)
        if layer is None:
            return None
        if kind in ("Linear", "Affine"):
            w = self.nodes[name].params["weight"]
            b = layer.bias
            return b_in * float(w.abs().sum(1).max()) + (float(b.abs().max()) if b is not None else 0.0)
        if kind == "Conv2d":
            w = self.nodes[name].params["weight"]
            b = layer.bias
            return b_in * float(w.abs().sum((1, 2, 3)).max()) + (float(b.abs().max()) if b is not None else 0.0)
        return b_in * (layer.fan_in if kind == "SumPool2d" else 1.0)

    def _fusable(self, name: str, keep: set) -> bool:
        """Whether Conv2d ``name`` may hand its events straight to its only consumer, a unit-gain neuron."""
        if self.fg.type_of(name) != "Conv2d" or name in keep or self.chunk is not None \
                or self.strategy not in ("auto", "event") or not self.layers[name].event_ok:
            return False
        succ = [n for n in self.fg.order if name in self.fg.preds[n]]
        if len(succ) != 1 or self.fg.preds[succ[0]] != [name]:
            return False
        node = self.nodes[succ[0]]
        return bool(self.layers[name].segment_ok and node.neuron and fused_ok(node) and _all_equal(node.coeff.gain, 1.0)
                    and _all_equal(node.coeff.bias, 0.0))

    def _materialise(self, e: EventDrive, T: int, B: int) -> torch.Tensor:
        lay = e.layer
        Ly, Lx, Hp, Wp, _ = lay._seg
        buf = torch.zeros((T * B, Hp, Wp, lay.out_shape[0]), dtype=self.dtype, device=e.x.device)
        for t0 in range(0, T, e.steps):
            t1 = min(T, t0 + e.steps)
            part = buf[t0 * B:t1 * B]
            for m, (_, rows, taps, vals) in enumerate(e.segments(t0, t1, B)):
                lay._seg_view(part, m).index_add_(0, rows, lay.seg_src(taps, vals))
        out = lay._crop(buf)
        return out + e.bias.reshape(-1, 1, 1) if e.bias is not None else out

    def __call__(self, fg: FlatGraph, runners, xs: Mapping[str, torch.Tensor], keep: set, membranes: bool):
        T, B = next(iter(xs.values())).shape[:2]
        consumers = {n: 0 for n in fg.order}
        for n in fg.order:
            for p in fg.preds[n]:
                consumers[p] += 1
        live: dict[str, torch.Tensor] = {}
        bounds: dict[str, float | None] = {}
        outs, mems = {}, {}
        self.stats = {}
        for name in fg.order:
            kind = fg.type_of(name)
            node = self.nodes[name]
            if name in fg.inputs:
                x = xs[name].flatten(0, 1)
            else:
                ins = [live[p] for p in fg.preds[name]]
                x = ins[0] if len(ins) == 1 else _add_all([as_float(i, self.dtype) for i in ins])
            v = None
            bound = None
            if name in fg.inputs:
                y = x
                lo, hi = torch.aminmax(x) if x.numel() else (x.new_zeros(()), x.new_zeros(()))
                bound = max(abs(float(lo)), abs(float(hi)))
            elif kind in ("Input", "Output"):
                y = x
                bound = self._bound(name, bounds, x)
            elif kind == "Flatten":
                y = x.reshape((x.shape[0],) + tuple(fg.out_shapes[name]))
                bound = self._bound(name, bounds, x)
            elif name in self.layers:
                st = self.stats.setdefault(name, LayerStats(name, kind))
                layer = self.layers[name]
                bound = self._bound(name, bounds, x)
                y = None
                if self._fusable(name, keep):
                    how, density, _ = layer.choose(x, self.strategy, T, B)
                    if how == "event":
                        st.methods.append("event+neuron")
                        st.density.append(density)
                        if not hasattr(layer, "_seg"):
                            layer._segments_setup(x.device)
                        rows = density * x.numel() * layer._seg[0]
                        steps = T if rows <= EVENT_ROWS else max(1, int(T * EVENT_ROWS // rows))
                        if layer.bias is not None:
                            st.adds += T * B * layer.n_out
                        y = EventDrive(layer, x, layer.bias, st, steps)
                if y is None:
                    y = layer.run(x, self.strategy, T, B, self.chunk, st)
            elif node.neuron and fused_ok(node):
                want = membranes and name in keep
                pb = None
                ps = fg.preds[name]
                if ps and all(bounds.get(p) is not None for p in ps):
                    pb = float(sum(bounds[p] for p in ps))  # type: ignore[misc]
                r = fused_neuron(node, x, T, B, want, pb)
                if r is None:
                    if isinstance(x, EventDrive):
                        x = self._materialise(x, T, B)
                    y, v = node.over_time(as_float(x, self.dtype).unflatten(0, (T, B)), want)
                else:
                    y, v = r
                y = y.flatten(0, 1)
                bound = 1.0 if y.dtype == torch.bool else None
                if not want:
                    v = None
            else:
                yt, v = node.over_time(as_float(x, self.dtype).unflatten(0, (T, B)), membranes and name in keep)
                y = yt.flatten(0, 1)
            live[name] = y
            bounds[name] = bound
            for p in fg.preds[name]:
                consumers[p] -= 1
                if consumers[p] == 0 and p not in keep:
                    del live[p]
            if name in keep:
                outs[name] = y.unflatten(0, (T, B))
                if v is not None:
                    mems[name] = v
        return outs, mems


def _add_all(xs: list[torch.Tensor]) -> torch.Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out
