"""A verl SFT dataset over redraft's token track, so that verl trains exactly
the tokens redraft marks trainable.

verl's own multi-turn SFT dataset re-renders the `messages` column message by
message with the tokenizer's chat template and trains every assistant message
whole (or refuses the row when the per-message rendering differs from the
whole conversation's, as Qwen3's template does): it cannot see the spans inside
a message that a recipe masks (the erroneous step of a splice, the first answer
of ISC/PAM). This class reads the `input_ids` and `labels` of an `sft/2` or
`sft/4` shard instead (redraft's token track, made with `output.tokenizer`) and
gives verl's trainer a `loss_mask` that is 1 exactly where `labels` is not -100.

Use it in verl's SFT trainer (verl.trainer.sft_trainer, 0.9.1) with:

    data.custom_cls.path=/path/to/redraft/python/redraft_verl_sft.py
    data.custom_cls.name=RedraftSFTDataset
    data.train_files=[out/data/sft/train-00000.parquet, ...]
    data.max_length=<at least the longest row>   (rows longer fail, as verl's own
                                                  dataset does with truncation=error)

and the tokenizer the track was made with (the shard metadata names it:
`redraft.tokenizer`, `redraft.tokenizer_sha256`). The settings this class
reads are verl's: `pad_mode` (`no_padding` only, the default of verl's
sft_trainer_engine.yaml; its loss reads the padded layout from other keys),
`max_length`, `truncation` (`error`, `left`, `right`), and `shuffle`/`seed`
with `max_samples`. It needs pyarrow and torch, which verl brings.
"""

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset

IGNORE = -100


def _get(config, key, default):
    if config is None:
        return default
    v = config.get(key, default)
    return default if v is None else v


class RedraftSFTDataset(Dataset):
    """verl's SFT dataset interface: (parquet_files, tokenizer, config,
    processor, max_samples), items with input_ids, position_ids and
    loss_mask, as verl's MultiTurnSFTDataset returns them under
    pad_mode no_padding."""

    def __init__(self, parquet_files, tokenizer, config=None, processor=None, max_samples=-1):
        if isinstance(parquet_files, str):
            parquet_files = [parquet_files]
        self.tokenizer = tokenizer
        pad_mode = _get(config, "pad_mode", "no_padding")
        self.pad_mode = str(getattr(pad_mode, "value", pad_mode))
        if self.pad_mode != "no_padding":
            raise ValueError(f"data.pad_mode={self.pad_mode}: RedraftSFTDataset supports no_padding (verl's default)")
        self.max_length = int(_get(config, "max_length", 1024))
        self.truncation = str(_get(config, "truncation", "error"))
        if self.truncation not in ("error", "left", "right"):
            raise ValueError(f"truncation {self.truncation!r}")
        self.input_ids, self.labels = [], []
        for path in list(parquet_files):
            f = pq.ParquetFile(path)
            meta = {k.decode(): v.decode() for k, v in (f.schema_arrow.metadata or {}).items()}
            names = f.schema_arrow.names
            if "input_ids" not in names or "labels" not in names:
                raise ValueError(
                    f"{path}: no token track (schema {meta.get('redraft.schema', '?')}): run redraft with "
                    "output.tokenizer to write sft/4 rows with input_ids and labels"
                )
            t = f.read(columns=["input_ids", "labels"])
            self.input_ids += t.column("input_ids").to_pylist()
            self.labels += t.column("labels").to_pylist()
        n = len(self.input_ids)
        if max_samples is not None and 0 < max_samples < n:
            if _get(config, "shuffle", False):
                seed = _get(config, "seed", None)
                rng = np.random.default_rng(*(() if seed is None else (seed,)))
                idx = rng.choice(n, size=max_samples, replace=False).tolist()
            else:
                idx = list(range(max_samples))
            self.input_ids = [self.input_ids[i] for i in idx]
            self.labels = [self.labels[i] for i in idx]
        vocab = len(tokenizer) if tokenizer is not None else None
        for i, (ids, labels) in enumerate(zip(self.input_ids, self.labels)):
            if len(ids) != len(labels):
                raise ValueError(f"row {i}: {len(ids)} input_ids but {len(labels)} labels")
            if vocab is not None and ids and max(ids) >= vocab:
                raise ValueError(
                    f"row {i}: token id {max(ids)} is outside the tokenizer's {vocab} ids: "
                    "use the tokenizer the track was made with (shard metadata redraft.tokenizer)"
                )

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, item):
        input_ids = torch.tensor(self.input_ids[item], dtype=torch.long)
        labels = torch.tensor(self.labels[item], dtype=torch.long)
        # verl's loss mask is aligned with the tokens (its loss shifts it by
        # one to meet the log-probabilities): 1 on a token that is trained,
        # which is a token whose label is not -100.
        loss_mask = (labels != IGNORE).long()
        n = input_ids.shape[0]
        if n > self.max_length:
            if self.truncation == "error":
                raise ValueError(f"row {item}: {n} tokens, more than data.max_length={self.max_length}")
            keep = slice(n - self.max_length, n) if self.truncation == "left" else slice(0, self.max_length)
            input_ids, loss_mask = input_ids[keep], loss_mask[keep]
            n = self.max_length
        position_ids = torch.arange(n, dtype=torch.long)
        return {"input_ids": input_ids, "position_ids": position_ids, "loss_mask": loss_mask}
