"""A tiny text embedding model that the tests write themselves, since no model hub is reachable here.

It is a real ONNX graph (written with the onnx package) and a real tokenizer (built with tokenizers): each
word of a small vocabulary has a fixed random vector, and the graph returns every token's vector as its
"last hidden state", so fastembed's mean pooling and normalisation make a text's embedding the normalised
mean of its words' vectors. Texts that share words are near each other, which is all a search test needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

VOCAB = ["[PAD]", "[UNK]"] + (
    "apple banana cherry fruit orchard tree river boat water sea ship harbour mountain goat rock snow "
    "climb train rail station city night music piano song guitar concert code python bug compiler test"
).split()
DIMENSION = 16
NAME = "tiny/bag-of-words"


def table(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((len(VOCAB), DIMENSION)).astype(np.float32)
    vectors[0] = 0.0  # padding adds nothing (fastembed's mean pooling masks it out anyway)
    return vectors


def expected(text: str) -> np.ndarray:
    """The embedding the model must give `text`: the normalised mean of its known words' vectors."""
    ids = [VOCAB.index(w) if w in VOCAB else 1 for w in text.lower().split()]
    mean = table()[ids].mean(axis=0)
    return mean / np.linalg.norm(mean)


def write(directory: Path, model_file: str = "model.onnx", manifest: bool = True,
          vocab: list[str] | None = None, vectors: np.ndarray | None = None) -> Path:
    """The model's files in `directory` (made if needed), as BASTION_EMBED_MODEL_DIR expects them. `vocab`
    and `vectors` (one row per word, [PAD] and [UNK] first) make another model of the same kind
    (bench/text.py makes one for its labelled set)."""
    vocab = VOCAB if vocab is None else vocab
    vectors = table() if vectors is None else vectors.astype(np.float32)
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    directory.mkdir(parents=True, exist_ok=True)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["last_hidden_state"], axis=0)],
        "bag_of_words",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", vectors.shape[1]])],
        initializer=[numpy_helper.from_array(vectors, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what ONNX Runtime of these years reads
    onnx.checker.check_model(model)
    onnx.save(model, str(directory / model_file))

    tokenizer = Tokenizer(models.WordLevel({word: i for i, word in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512, "pad_token": "[PAD]"}))
    (directory / "special_tokens_map.json").write_text(json.dumps({"pad_token": "[PAD]", "unk_token": "[UNK]"}))
    (directory / "config.json").write_text(json.dumps({"pad_token_id": 0}))
    if manifest:
        (directory / "bastion-embedder.json").write_text(
            json.dumps({"dimension": vectors.shape[1], "pooling": "mean", "normalize": True, "model_file": model_file})
        )
    return directory
