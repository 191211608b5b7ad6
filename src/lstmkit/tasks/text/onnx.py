"""The text tasks' ONNX graphs: LanguageModel, TextClassifier and Seq2Seq (an encoder graph and a decoder-step graph).

What the graphs take and give is listed in :mod:`lstmkit.export.onnx`; :func:`lstmkit.export.onnx.export_onnx` checks
them against the model and writes them. Imported by each task's ``onnx_graphs`` on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...nn.onnx_graph import BOOL, FLOAT, INT64, CheckedGraph, Graph, dim, lstm_sequence, lstm_step, sample_lengths
from ..sequence.onnx import sequence_model_graph

__all__ = ["DECODER_STEP_SUFFIX", "language_model_graphs", "seq2seq_graphs", "text_classifier_graphs"]

DECODER_STEP_SUFFIX = "-decoder-step"  # Seq2Seq's second file: model.onnx -> model-decoder-step.onnx


def language_model_graphs(lm: Any, streaming: bool, rng: np.random.Generator) -> list[CheckedGraph]:
    """A LanguageModel's graph, whose state is explicit (the same graph streams)."""
    if lm.net is None:
        raise RuntimeError("This LanguageModel is not trained yet: call fit(text) before exporting it.")
    net = lm.net.eval()
    lstm, V = net.lstm, net.decoder.out_features
    L, S, H = lstm.num_layers, lstm.state_size, lstm.hidden_size
    g = Graph("lstmkit_language_model")
    ids = g.input("ids", INT64, ["B", "T"])
    h0, c0 = g.input("h0", FLOAT, [L, "B", S]), g.input("c0", FLOAT, [L, "B", H])
    x = g.op("Transpose", [g.embedding(ids, net.embedding)], perm=[1, 0, 2])  # (T, B, E)
    y, h, c = lstm_sequence(g, lstm, x, (h0, c0), None)
    logits = g.linear(g.op("Transpose", [y], perm=[1, 0, 2]), net.decoder)  # (B, T, V)
    g.output(logits, "logits", FLOAT, ["B", "T", V])
    g.output(h, "h_n", FLOAT, [L, "B", S])
    g.output(c, "c_n", FLOAT, [L, "B", H])

    def reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            state = (torch.from_numpy(feeds["h0"]), torch.from_numpy(feeds["c0"]))
            out, (h_n, c_n) = net(torch.from_numpy(feeds["ids"]), state)
            return [out.numpy(), h_n.numpy(), c_n.numpy()]

    n_vocab = net.embedding.num_embeddings
    samples = []
    for batch, time in ((1, 1), (2, 12)) if not streaming else ((1, 1), (4, 1)):
        samples.append({"ids": rng.integers(0, n_vocab, (batch, time)).astype(np.int64),
                        "h0": rng.standard_normal((L, batch, S)).astype(np.float32),
                        "c0": rng.standard_normal((L, batch, H)).astype(np.float32)})  # fmt: skip
    return [CheckedGraph(g, samples, reference)]


def text_classifier_graphs(clf: Any, streaming: bool, rng: np.random.Generator) -> list[CheckedGraph]:
    """A TextClassifier's graph: its embedding, then the per-sequence model."""
    if streaming:
        raise ValueError("A TextClassifier reads whole texts; export it without --streaming.")
    net = clf.net.eval()
    g = Graph("lstmkit_text_classifier")
    ids = g.input("ids", INT64, ["B", "T"])
    lengths = g.input("lengths", INT64, ["B"])
    x = g.embedding(ids, net.embedding)  # (B, T, E)
    out = sequence_model_graph(g, net.body, x, lengths)
    K = net.body.head.out_features
    g.output(out, "logits", FLOAT, ["B", K])
    g.output(g.op("Softmax", [out], axis=-1), "probabilities", FLOAT, ["B", K])

    def reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            logits = net(torch.from_numpy(feeds["ids"]), torch.from_numpy(feeds["lengths"]))
            return [logits.numpy(), torch.softmax(logits, -1).numpy()]

    n_vocab = net.embedding.num_embeddings
    samples = []
    for batch, time in ((1, 3), (4, 11)):
        lengths_np = sample_lengths(rng, batch, time)
        ids_np = rng.integers(1, n_vocab, (batch, time)).astype(np.int64)
        ids_np[np.arange(time)[None, :] >= lengths_np[:, None]] = 0  # padding id past each text's end
        samples.append({"ids": ids_np, "lengths": lengths_np})
    return [CheckedGraph(g, samples, reference)]


def seq2seq_graphs(model: Any, streaming: bool, rng: np.random.Generator) -> list[CheckedGraph]:
    """A Seq2Seq model's two graphs: the encoder, and the decoder step (file suffix :data:`DECODER_STEP_SUFFIX`)."""
    from .seq2seq import BOS, PAD, SPECIALS

    if streaming:
        raise ValueError(
            "A Seq2Seq model is always exported as two graphs, the encoder and the decoder step (the decoding loop "
            "stays in your code); export it without --streaming."
        )
    net = model._check().eval()
    cfg = net  # the network keeps its sizes as attributes
    H, D, Ld, attention = cfg.hidden_size, 2 if cfg.bidirectional else 1, cfg.decoder_layers, cfg.attention
    V = net.out.out_features
    K = cfg.attention_size if attention == "bahdanau" else H  # width of the keys

    enc = Graph("lstmkit_seq2seq_encoder")
    source = enc.input("source", INT64, ["B", "S"])
    lengths = enc.input("lengths", INT64, ["B"])
    x = enc.op("Transpose", [enc.embedding(source, net.source_embedding)], perm=[1, 0, 2])  # (S, B, E)
    out, h_n, c_n = lstm_sequence(enc, net.encoder, x, None, lengths)  # (S, B, D*H), (Le*D, B, H)
    outputs = enc.op("Transpose", [out], perm=[1, 0, 2])  # (B, S, D*H), 0 past each source's end

    def bridge(final: str, linear: nn.Linear, tanh: bool) -> str:
        top = enc.op("Slice", [final, enc.ints([-D]), enc.ints([2**62]), enc.ints([0])])  # (D, B, H)
        top = enc.op("Reshape", [enc.op("Transpose", [top], perm=[1, 0, 2]), enc.ints([0, -1])])  # (B, D*H)
        y = enc.linear(top, linear)
        y = enc.op("Tanh", [y]) if tanh else y
        return enc.op("Transpose", [enc.op("Reshape", [y, enc.ints([0, Ld, H])])], perm=[1, 0, 2])  # (Ld, B, H)

    h0, c0 = bridge(h_n, net.bridge_h, True), bridge(c_n, net.bridge_c, False)
    if attention != "none":
        enc.output(outputs, "outputs", FLOAT, ["B", "S", D * H])
        enc.output(enc.linear(outputs, net.keys), "keys", FLOAT, ["B", "S", K])
        enc.output(enc.valid_mask(lengths, dim(enc, source, 1)), "mask", BOOL, ["B", "S"])
    enc.output(h0, "h", FLOAT, [Ld, "B", H])
    enc.output(c0, "c", FLOAT, [Ld, "B", H])
    if attention != "none":
        zeros = enc.op("ConstantOfShape", [enc.op("Concat", [dim(enc, source, 0), enc.ints([H])], axis=0)])
        enc.output(zeros, "feed", FLOAT, ["B", H])

    def encoder_reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            memory = net.encode(torch.from_numpy(feeds["source"]), torch.from_numpy(feeds["lengths"]))
            state = net.initial_state(memory)
            names = ["outputs", "keys", "mask", "h", "c"] if attention != "none" else ["h", "c"]
            got = [memory[n].numpy() for n in names]
            return got + ([state["feed"].numpy()] if attention != "none" else [])

    dec = Graph("lstmkit_seq2seq_decoder_step")
    token = dec.input("token", INT64, ["B"])
    h, c = dec.input("h", FLOAT, [Ld, "B", H]), dec.input("c", FLOAT, [Ld, "B", H])
    emb = dec.embedding(token, net.target_embedding)  # (B, E)
    if attention != "none":
        feed = dec.input("feed", FLOAT, ["B", H])
        mem = dec.input("outputs", FLOAT, ["B", "S", D * H])
        keys = dec.input("keys", FLOAT, ["B", "S", K])
        mask = dec.input("mask", BOOL, ["B", "S"])

        def attend(energies: str) -> tuple[str, str]:
            scores = dec.op("Where", [mask, energies, dec.const(-np.inf, "neg_inf")])
            weights = dec.op("Softmax", [scores], axis=1)  # (B, S)
            context = dec.op("MatMul", [dec.op("Unsqueeze", [weights, dec.ints([1])]), mem])  # (B, 1, D*H)
            return dec.op("Squeeze", [context, dec.ints([1])]), weights

        x_t = dec.op("Concat", [emb, feed], axis=1)  # input feeding: the previous attentional vector
        if attention == "bahdanau":  # from the previous top state
            query = dec.linear(dec.op("Gather", [h, dec.ints(-1)], axis=0), net.query)  # (B, A)
            tanh = dec.op("Tanh", [dec.op("Add", [dec.op("Unsqueeze", [query, dec.ints([1])]), keys])])  # (B, S, A)
            context, weights = attend(dec.op("Squeeze", [dec.linear(tanh, net.score), dec.ints([2])]))
            y, h_next, c_next = lstm_step(dec, net.decoder, x_t, (h, c))
        else:  # luong, from the current top state
            y, h_next, c_next = lstm_step(dec, net.decoder, x_t, (h, c))
            energies = dec.op("MatMul", [keys, dec.op("Unsqueeze", [y, dec.ints([2])])])  # (B, S, 1)
            context, weights = attend(dec.op("Squeeze", [energies, dec.ints([2])]))
        top = dec.op("Tanh", [dec.linear(dec.op("Concat", [context, y], axis=1), net.combine)])  # (B, H)
    else:
        top, h_next, c_next = lstm_step(dec, net.decoder, emb, (h, c))
    dec.output(dec.linear(top, net.out), "logits", FLOAT, ["B", V])
    dec.output(h_next, "h_next", FLOAT, [Ld, "B", H])
    dec.output(c_next, "c_next", FLOAT, [Ld, "B", H])
    if attention != "none":
        dec.output(top, "feed_next", FLOAT, ["B", H])
        dec.output(weights, "weights", FLOAT, ["B", "S"])

    def step_reference(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        t = {k: torch.from_numpy(v) for k, v in feeds.items()}
        state = {"h": t["h"], "c": t["c"], "feed": t.get("feed", torch.zeros(t["h"].shape[1], H))}
        mask_t = t.get("mask", torch.ones(t["h"].shape[1], 1, dtype=torch.bool))
        memory = {"outputs": t.get("outputs"), "keys": t.get("keys"), "mask": mask_t}
        with torch.no_grad():
            logits, new, weights_t = net.step(t["token"], state, memory)
        got = [logits.numpy(), new["h"].numpy(), new["c"].numpy()]
        return got + ([new["feed"].numpy(), weights_t.numpy()] if attention != "none" else [])

    # sample sources (padded, random lengths); the decoder step checked along several steps of greedy decoding
    n_source = net.source_embedding.num_embeddings
    enc_samples, dec_samples = [], []
    for batch, time in ((1, 4), (3, 9)):
        lens = sample_lengths(rng, batch, time)
        ids = rng.integers(SPECIALS, n_source, (batch, time)).astype(np.int64)
        ids[np.arange(time)[None, :] >= lens[:, None]] = PAD
        enc_samples.append({"source": ids, "lengths": lens})
        with torch.no_grad():
            memory = net.encode(torch.from_numpy(ids), torch.from_numpy(lens))
            state = net.initial_state(memory)
            tok = torch.full((batch,), BOS, dtype=torch.long)
            for _ in range(4):
                feeds = {"token": tok.numpy(), "h": state["h"].numpy(), "c": state["c"].numpy()}
                if attention != "none":
                    feeds.update(feed=state["feed"].numpy(), outputs=memory["outputs"].numpy(),
                                 keys=memory["keys"].numpy(), mask=memory["mask"].numpy())  # fmt: skip
                dec_samples.append({k: np.ascontiguousarray(v) for k, v in feeds.items()})
                logits, state, _ = net.step(tok, state, memory)
                tok = logits.argmax(-1)
    return [CheckedGraph(enc, enc_samples, encoder_reference),
            CheckedGraph(dec, dec_samples, step_reference, DECODER_STEP_SUFFIX)]  # fmt: skip
