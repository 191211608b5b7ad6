"""The ``deploy`` suite: ``Predictor.stream`` at batch 1 vs onnxruntime's ``LSTM`` operator one step at a time."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .core import TARGET_DEPLOY, TARGET_DEPLOY_INT8, Row, Settings, Skip


def suite_deploy(settings: Settings, progress: Callable[[str], None]) -> list[Row]:
    """Issue 6's streaming target: ``Predictor.stream`` at batch 1 (a stream's state kept between calls) against
    onnxruntime running ONNX's ``LSTM`` operator one step at a time, the state fed back by hand."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise Skip("onnxruntime is not installed (pip install -e .[export])") from exc
    from ..export.onnx import export_onnx
    from ..inference.predictor import Predictor
    from ..tasks.sequence.estimators import SequenceRegressor

    rows = []
    for name, (I, H) in settings.stream_configs.items():
        progress(f"deploy {name}")
        rng = np.random.default_rng(0)
        est = SequenceRegressor(hidden_size=H, epochs=1, batch_size=8, normalize=False)
        est.fit(rng.standard_normal((8, 2, I)).astype(np.float32), rng.standard_normal(8).astype(np.float32))
        with tempfile.TemporaryDirectory() as tmp:  # the peer: the bare LSTM operator, exported from the same layer
            export_onnx(est.model_.core, Path(tmp) / "lstm.onnx", streaming=True)
            options = ort.SessionOptions()
            options.intra_op_num_threads = settings.threads
            peer = ort.InferenceSession(str(Path(tmp) / "lstm.onnx"), options, providers=["CPUExecutionProvider"])
        x = rng.standard_normal(I).astype(np.float32)
        peer_state = [np.zeros((1, 1, H), np.float32), np.zeros((1, 1, H), np.float32)]

        def peer_step(peer=peer, x=x[None], st=peer_state) -> None:
            _, st[0], st[1] = peer.run(None, {"x_t": x, "h": st[0], "c": st[1]})

        predictors = {
            "lstmkit": Predictor.load(est, "lstmkit"),
            "torch": Predictor.load(est, "torch"), "onnxruntime": Predictor.load(est, "onnxruntime"),
            "onnxruntime int8": Predictor.load(est, "onnxruntime", weights="int8"),
            "torch bf16": Predictor.load(est, "torch", weights="bfloat16"),
        }  # fmt: skip
        fns: dict[str, Callable[[], Any]] = {"peer": peer_step}
        for label, predictor in predictors.items():
            fns[label] = lambda predictor=predictor, x=x: predictor.stream("s", x)
        with torch.no_grad():
            core = est.model_.core
            weight = torch.cat((core.weight_ih_l0, core.weight_hh_l0), dim=1).contiguous()  # (4H, I+H)
        vec = torch.randn(I + H)
        fns["floor"] = lambda weight=weight, vec=vec: torch.mv(weight, vec)
        t = settings.measure(fns)
        shape = f"B=1 I={I} H={H} L=1, SequenceRegressor head"
        for label in predictors:
            int8 = label == "onnxruntime int8"
            rows.append(Row("deploy", name, f"Predictor.stream ({label})", shape, "s/step", t[label],
                            "onnxruntime LSTM operator, one step", t["peer"], TARGET_DEPLOY_INT8 if int8 else
                            TARGET_DEPLOY if label == "lstmkit" else None,
                            note="float32 peer; the stream's state kept by the Predictor"))  # fmt: skip
        rows.append(Row("deploy", name, "Predictor.stream (lstmkit)", shape, "s/step", t["lstmkit"],
                        "torch.mv (4H, I+H) floor", t["floor"], None,
                        note="context: the bare matrix-vector product, the limit"))  # fmt: skip
    return rows
