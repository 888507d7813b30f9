#!/usr/bin/env python3
"""redraft's datasets loaded as they are by the real trainers, on CPU (the
versions pinned in python/trainers-requirements.txt), with a tiny randomly
initialised Qwen3 model of the real Qwen3 vocabulary built from a config (no
weights downloaded). e2e's TestTrainerDatasets writes the outputs and runs
this script:

    test_trainer_datasets.py --sft SPLICE_DIR --run RUN_DIR --tokenizer QWEN3_DIR

SPLICE_DIR: the PRM800K splice's sft/4 rows (token track made with the Qwen3
tokenizer, chatml format); RUN_DIR: a SCoRe run (rl/6 with a qwen3 token
track, pairs/2, the verl prompt set); QWEN3_DIR: tokenizer.json and
tokenizer_config.json (with Qwen3's chat template).

Every dataset is loaded the way a user would (Hugging Face datasets through
the dataset card's configs, or the shard paths), never mapped or renamed
here. What the trainers train is read from their own batches: TRL's
dataloader, verl's collator and loss function, OpenRLHF's dataset items.
docs/trainers.md's truth table names the test behind each of its lines.
"""

import argparse
import glob
import math
import os
import sys
import tempfile
import types
import unittest

import pyarrow.parquet as pq
import torch

ARGS = None
HERE = os.path.dirname(os.path.abspath(__file__))
IGNORE = -100


def shards(root, dataset):
    files = sorted(glob.glob(os.path.join(root, "data", dataset, "*.parquet")))
    if not files:
        raise AssertionError(f"no {dataset} shards in {root}")
    return files


def rows(root, dataset):
    out = []
    for f in shards(root, dataset):
        out += pq.read_table(f).to_pylist()
    return out


def load(root, config):
    from datasets import load_dataset

    return load_dataset(root, config, split="train")


_tok = None


def tokenizer():
    global _tok
    if _tok is None:
        from transformers import AutoTokenizer

        _tok = AutoTokenizer.from_pretrained(ARGS.tokenizer)
    return _tok


def tiny_model():
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok = tokenizer()
    torch.manual_seed(0)
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=8192,
                      tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      bos_token_id=None)
    return Qwen3ForCausalLM(cfg)


def common(tmp):
    return dict(output_dir=tmp, report_to="none", use_cpu=True, bf16=False, save_strategy="no", seed=0,
                dataloader_num_workers=0, logging_steps=1, learning_rate=1e-4)


def trained(input_ids, labels):
    """The tokens a row trains: (position, id) where the label is not -100."""
    return [(i, t) for i, (t, l) in enumerate(zip(input_ids, labels)) if l != IGNORE]


class TRLSFT(unittest.TestCase):
    """TRL SFTTrainer on the token track: the trainer's own dataloader
    yields every row's labels as the shard holds them (max_length=None, and
    packed); with TRL's default max_length (1024) the rows longer than that
    are cut."""

    def test_labels_exact_from_dataloader(self):
        from trl import SFTConfig, SFTTrainer

        want = {}
        for r in rows(ARGS.sft, "sft"):
            want.setdefault(tuple(r["input_ids"]), []).append(r["labels"])
        ds = load(ARGS.sft, "sft")
        with tempfile.TemporaryDirectory() as tmp:
            args = SFTConfig(**common(tmp), max_length=None, per_device_train_batch_size=8, max_steps=2)
            trainer = SFTTrainer(model=tiny_model(), args=args, train_dataset=ds, processing_class=tokenizer())
            seen = 0
            for batch in trainer.get_train_dataloader():
                for i in range(batch["input_ids"].shape[0]):
                    n = int(batch["attention_mask"][i].sum())
                    ids = batch["input_ids"][i][:n].tolist()
                    labels = batch["labels"][i].tolist()
                    self.assertIn(tuple(ids), want, "a batch row that is no shard row, or one seen twice")
                    left = want[tuple(ids)]
                    self.assertIn(labels[:n], left, f"labels differ from the shard's: row of {n} tokens")
                    left.remove(labels[:n])
                    if not left:
                        del want[tuple(ids)]
                    self.assertTrue(all(x == IGNORE for x in labels[n:]))
                    seen += 1
            self.assertEqual(want, {}, "shard rows the dataloader did not yield")
            self.assertEqual(seen, len(ds))
            # Two steps on the 8 shortest rows: a forward pass over the
            # Qwen3 vocabulary costs 0.6 MB per token on CPU.
            short = sorted(range(len(ds)), key=lambda i: len(ds[i]["input_ids"]))[:8]
            args = SFTConfig(**common(tmp), max_length=None, per_device_train_batch_size=4, max_steps=2)
            trainer = SFTTrainer(model=tiny_model(), args=args, train_dataset=ds.select(short), processing_class=tokenizer())
            out = trainer.train()
            self.assertEqual(trainer.state.global_step, 2)
            self.assertTrue(math.isfinite(out.training_loss))
        print(f"TRL SFTTrainer: labels exact on {seen}/{seen} sft rows", file=sys.stderr)

    def test_packing_keeps_labels(self):
        """packing=True (TRL's bfd strategy, padding-free): every packed
        batch holds whole rows whose labels are the shard's (TRL sets each
        row's first label to -100, a prompt token's anyway). The batches
        only: no training step on 4096-token sequences on CPU."""
        from trl import SFTConfig, SFTTrainer

        want = {}
        for r in rows(ARGS.sft, "sft"):
            want.setdefault(tuple(r["input_ids"]), []).append(r["labels"])
            self.assertEqual(r["labels"][0], IGNORE)
        n_rows = sum(len(v) for v in want.values())
        longest = max(len(k) for k in want)
        with tempfile.TemporaryDirectory() as tmp:
            args = SFTConfig(**common(tmp), packing=True, max_length=max(4096, longest), per_device_train_batch_size=2,
                             max_steps=1)
            trainer = SFTTrainer(model=tiny_model(), args=args, train_dataset=load(ARGS.sft, "sft"),
                                 processing_class=tokenizer())
            seen = 0
            for batch in trainer.get_train_dataloader():
                self.assertEqual(batch["input_ids"].shape[0], 1, "padding-free batches are one row")
                ids, labels, pos = (batch[k][0].tolist() for k in ("input_ids", "labels", "position_ids"))
                starts = [i for i, p in enumerate(pos) if p == 0] + [len(pos)]
                for a, b in zip(starts, starts[1:]):
                    key = tuple(ids[a:b])
                    self.assertIn(key, want, "a packed segment that is no whole shard row, or one seen twice")
                    self.assertIn(labels[a:b], want[key])
                    want[key].remove(labels[a:b])
                    if not want[key]:
                        del want[key]
                    seen += 1
        self.assertEqual(want, {}, "shard rows the packed batches did not hold")
        self.assertEqual(seen, n_rows)

    def test_default_max_length_truncates(self):
        from trl import SFTConfig, SFTTrainer

        self.assertEqual(SFTConfig.__dataclass_fields__["max_length"].default, 1024)
        lengths = [len(r["input_ids"]) for r in rows(ARGS.sft, "sft")]
        over = sum(n > 1024 for n in lengths)
        # docs/trainers.md states these counts for the bundled PRM800K splice.
        self.assertEqual((over, len(lengths)), (131, 781))
        with tempfile.TemporaryDirectory() as tmp:
            trainer = SFTTrainer(model=tiny_model(), args=SFTConfig(**common(tmp), max_steps=1),
                                 train_dataset=load(ARGS.sft, "sft"), processing_class=tokenizer())
            got = sorted(zip(map(tuple, trainer.train_dataset["input_ids"]), map(tuple, trainer.train_dataset["labels"])))
        # Each row's first 1024 tokens and their labels.
        want = sorted((tuple(r["input_ids"][:1024]), tuple(r["labels"][:1024])) for r in rows(ARGS.sft, "sft"))
        self.assertEqual(got, want)
        print(f"TRL SFTTrainer default max_length=1024 cuts {over} of {len(lengths)} rows", file=sys.stderr)


class TRLDPO(unittest.TestCase):
    """TRL DPOTrainer on pairs/2 as it is (conversational: prompt, chosen and
    rejected are message lists): each processed row is the chat template's
    rendering of prompt + chosen (+ rejected), and two steps train."""

    def test_pairs(self):
        from trl import DPOConfig, DPOTrainer

        tok = tokenizer()
        ds = load(ARGS.run, "pairs")
        self.assertGreater(len(ds), 0)
        self.assertEqual(DPOConfig.__dataclass_fields__["max_length"].default, 1024)
        with tempfile.TemporaryDirectory() as tmp:
            args = DPOConfig(**common(tmp), per_device_train_batch_size=2, max_steps=2)
            # The reference model: the same tiny model (a hub id otherwise).
            trainer = DPOTrainer(model=tiny_model(), ref_model=tiny_model(), args=args, train_dataset=ds, processing_class=tok)
            proc = trainer.train_dataset
            self.assertEqual(len(proc), len(ds))
            think = tok.encode("<think>\n\n</think>\n\n", add_special_tokens=False)
            for src, got in zip(ds, proc):
                for side in ("chosen", "rejected"):
                    # Qwen3's template opens the last assistant message with
                    # an empty think block: both completions start with it.
                    self.assertEqual(got[side + "_ids"][: len(think)], think)
                    full = tok.apply_chat_template(src["prompt"] + src[side], tokenize=False)
                    self.assertEqual(tok.decode(got["prompt_ids"] + got[side + "_ids"]), full)
                    self.assertIn(src[side + "_text"], tok.decode(got[side + "_ids"]))
            out = trainer.train()
            self.assertEqual(trainer.state.global_step, 2)
            self.assertTrue(math.isfinite(out.training_loss))


def grpo(tmp, ds, reward):
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(**common(tmp), per_device_train_batch_size=2, num_generations=2, max_completion_length=4,
                      max_steps=1)
    return GRPOTrainer(model=tiny_model(), reward_funcs=[reward], args=args, train_dataset=ds,
                       processing_class=tokenizer())


class TRLGRPO(unittest.TestCase):
    """TRL GRPOTrainer samples from the verl prompt set's and the rl rows'
    prompt column, and the rows' other columns reach the reward function."""

    def test_verl_prompt_set(self):
        refs = {r["extra_info"]["task_id"]: r["reward_model"]["ground_truth"] for r in rows(ARGS.run, "verl")}
        calls = []

        def reward(completions, reward_model, data_source, extra_info, **kw):
            calls.append((reward_model, data_source, extra_info))
            return [float(rm["ground_truth"] in c[0]["content"]) for rm, c in zip(reward_model, completions)]

        with tempfile.TemporaryDirectory() as tmp:
            grpo(tmp, load(ARGS.run, "verl"), reward).train()
        self.assertTrue(calls)
        for rms, sources, infos in calls:
            for rm, src, info in zip(rms, sources, infos):
                self.assertEqual(rm["ground_truth"], refs[info["task_id"]])
                self.assertEqual(rm["style"], "rule")
                self.assertEqual(src, "toy")

    def test_rl_rows(self):
        by_prompt = {}
        for r in rows(ARGS.run, "rl"):
            by_prompt.setdefault(str(r["prompt"]), set()).add(r["reference"])
        calls = []

        def reward(prompts, completions, reference, reward, advantage, **kw):
            calls.append((prompts, reference, reward, advantage))
            return [0.0] * len(completions)

        with tempfile.TemporaryDirectory() as tmp:
            grpo(tmp, load(ARGS.run, "rl"), reward).train()
        self.assertTrue(calls)
        for prompts, refs, rewards, advs in calls:
            for p, ref in zip(prompts, refs):
                self.assertIn(ref, by_prompt[str(p)])
            self.assertTrue(all(isinstance(x, float) for x in rewards))


def verl_data_config(name):
    import verl
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(os.path.join(os.path.dirname(verl.__file__), "trainer", "config", name))
    return cfg.data


class VerlRLHF(unittest.TestCase):
    """verl's RLHFDataset (PPO/GRPO) with its default data config on the
    verl prompt set and on rl rows: the prompt, reward_model and extra_info
    verl hands its rollout and reward function are the rows'."""

    def check(self, dataset):
        from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

        src = rows(ARGS.run, dataset)
        ds = RLHFDataset(data_files=shards(ARGS.run, dataset), tokenizer=tokenizer(), config=verl_data_config("_generated_ppo_trainer.yaml"))
        self.assertEqual(len(ds), len(src))
        items = [ds[i] for i in range(len(ds))]
        for r, it in zip(src, items):
            self.assertEqual(list(it["raw_prompt"]), r["prompt"])
            self.assertEqual(it["reward_model"]["ground_truth"], r["reward_model"]["ground_truth"])
            self.assertEqual(it["data_source"], r["data_source"])
            self.assertEqual(it["extra_info"]["task_id"], r["extra_info"]["task_id"])
        batch = collate_fn(items[:4])
        self.assertEqual([x["ground_truth"] for x in batch["reward_model"]], [r["reward_model"]["ground_truth"] for r in src[:4]])

    def test_verl_prompt_set(self):
        self.check("verl")

    def test_rl_rows(self):
        self.check("rl")


class VerlSFT(unittest.TestCase):
    """verl's SFT trainer path (create_sft_dataset with data.custom_cls, its
    collator, its sft_loss) over python/redraft_verl_sft.py: the tokens
    verl's loss counts are exactly those redraft's labels train, on every
    row. And verl's own MultiTurnSFTDataset under its defaults refuses the
    rows with a Qwen3 tokenizer."""

    def test_custom_cls_trains_labels(self):
        import verl.utils.tensordict_utils as tu
        from torchdata.stateful_dataloader import StatefulDataLoader
        from verl.trainer.sft_trainer import create_sft_dataset
        from verl.utils.dataset.dataset_utils import SFTTensorCollator
        from verl.workers.utils.losses import sft_loss

        cfg = verl_data_config("sft_trainer_engine.yaml")
        cfg.custom_cls.path = os.path.join(HERE, "redraft_verl_sft.py")
        cfg.custom_cls.name = "RedraftSFTDataset"
        src = rows(ARGS.sft, "sft")
        cfg.max_length = max(len(r["input_ids"]) for r in src)
        ds = create_sft_dataset(shards(ARGS.sft, "sft"), cfg, tokenizer(), None)
        self.assertEqual(type(ds).__name__, "RedraftSFTDataset")
        self.assertEqual(len(ds), len(src))
        dl = StatefulDataLoader(ds, batch_size=16, shuffle=False, collate_fn=SFTTensorCollator(cfg.pad_mode))
        k = 0
        for batch in dl:
            mask = batch["loss_mask"]
            offsets = mask.offsets().tolist()
            values = torch.zeros(int(offsets[-1]), requires_grad=True)
            log_probs = torch.nested.nested_tensor_from_jagged(values, offsets=mask.offsets())
            # What verl's engine adds before the loss: the batch's trained
            # token count (from loss_mask) and the data-parallel size.
            td = tu.get_tensordict(tensor_dict=dict(batch), non_tensor_dict={
                "pad_mode": cfg.pad_mode, "dp_size": 1, "batch_num_tokens": int(mask.values().sum())})
            loss, _ = sft_loss(None, {"log_probs": log_probs}, td)
            loss.backward()
            counted = (values.grad != 0).nonzero().flatten().tolist()
            ids = batch["input_ids"].values().tolist()
            per_row = [[] for _ in range(len(offsets) - 1)]
            for p in counted:
                s = max(j for j in range(len(offsets) - 1) if offsets[j] <= p)
                # log_probs[p] is the log-probability of token p + 1.
                self.assertLess(p + 1, offsets[s + 1], "a counted log-prob predicts the next row's first token")
                per_row[s].append((p + 1 - offsets[s], ids[p + 1]))
            for got in per_row:
                r = src[k]
                self.assertEqual(got, trained(r["input_ids"], r["labels"]), f"row {k} ({r['id']})")
                k += 1
        self.assertEqual(k, len(src))
        print(f"verl custom_cls RedraftSFTDataset: trained tokens exact on {k}/{k} sft rows", file=sys.stderr)

    def test_custom_cls_limits(self):
        """The shipped class refuses a shard without a token track, and a
        row longer than data.max_length under verl's default truncation
        (error); truncation=right keeps the row's start and its labels."""
        import pyarrow as pa

        from verl.trainer.sft_trainer import create_sft_dataset

        cfg = verl_data_config("sft_trainer_engine.yaml")
        cfg.custom_cls.path = os.path.join(HERE, "redraft_verl_sft.py")
        cfg.custom_cls.name = "RedraftSFTDataset"
        with tempfile.TemporaryDirectory() as tmp:
            plain = os.path.join(tmp, "sft3.parquet")
            pq.write_table(pa.table({"messages": [[{"role": "user", "content": "q"}]]}), plain)
            with self.assertRaisesRegex(ValueError, "output.tokenizer"):
                create_sft_dataset([plain], cfg, tokenizer(), None)
        src = pq.read_table(shards(ARGS.sft, "sft")[0]).to_pylist()
        longest = max(range(len(src)), key=lambda i: len(src[i]["input_ids"]))
        cfg.max_length = len(src[longest]["input_ids"]) - 10
        ds = create_sft_dataset(shards(ARGS.sft, "sft")[:1], cfg, tokenizer(), None)
        with self.assertRaisesRegex(ValueError, "data.max_length"):
            ds[longest]
        cfg.truncation = "right"
        it = create_sft_dataset(shards(ARGS.sft, "sft")[:1], cfg, tokenizer(), None)[longest]
        self.assertEqual(it["input_ids"].tolist(), src[longest]["input_ids"][: cfg.max_length])
        self.assertEqual(it["loss_mask"].tolist(), [int(x != IGNORE) for x in src[longest]["labels"][: cfg.max_length]])

    def multiturn(self, files=1, **settings):
        from verl.trainer.sft_trainer import create_sft_dataset

        cfg = verl_data_config("sft_trainer_engine.yaml")
        cfg.max_length = 8192
        for k, v in settings.items():
            cfg[k] = v
        ds = create_sft_dataset(shards(ARGS.sft, "sft")[:files], cfg, tokenizer(), None)
        self.assertEqual(type(ds).__name__, "MultiTurnSFTDataset")
        return ds

    def test_multiturn_defaults_fail(self):
        """verl's default SFT dataset: sft rows' null tools column is passed
        to the chat template (TypeError), and with data.tools_key pointed at
        a column the shards lack, Qwen3's template fails its per-turn versus
        whole-conversation check on every row."""
        ds = self.multiturn()
        with self.assertRaises(TypeError):
            ds[0]
        ds = self.multiturn(files=None, tools_key="no_such_column")
        self.assertEqual(len(ds), len(rows(ARGS.sft, "sft")))
        for i in range(len(ds)):
            with self.assertRaises(AssertionError, msg=f"row {i}"):
                ds[i]

    def test_multiturn_ignore_mismatch_trains_masked_text(self):
        """With data.ignore_input_ids_mismatch=true verl's dataset trains
        every assistant message whole: the text redraft masks (the spliced
        erroneous step) is among the tokens it trains."""
        tok = tokenizer()
        ds = self.multiturn(tools_key="no_such_column", ignore_input_ids_mismatch=True)
        src = pq.read_table(shards(ARGS.sft, "sft")[0]).to_pylist()
        self.assertEqual(len(ds), len(src))
        verl_total = redraft_total = 0
        for i, r in enumerate(src):
            it = ds[i]
            ids, mask = it["input_ids"].tolist(), it["loss_mask"].tolist()
            text = tok.decode([t for t, m in zip(ids, mask) if m])
            masked = [sg for m in r["messages"] if m["role"] == "assistant" for sg in m["segments"] if not sg["trainable"]]
            self.assertTrue(masked, f"row {i} masks nothing inside its assistant message: the check proves nothing")
            for sg in masked:
                piece = m_text(r, sg).strip()
                if piece:
                    self.assertIn(piece, text, f"row {i}")
            verl_total += sum(mask)
            redraft_total += sum(l != IGNORE for l in r["labels"])
        self.assertGreater(verl_total, redraft_total)
        print(f"verl MultiTurnSFTDataset (ignore_input_ids_mismatch): {verl_total} trained tokens, redraft's labels {redraft_total}",
              file=sys.stderr)


def m_text(row, segment):
    """A segment's text, from its code-point span in its message."""
    for m in row["messages"]:
        if any(sg is segment for sg in m["segments"]):
            return m["content"][segment["start"]:segment["end"]]
    raise AssertionError("segment not in the row")


def openrlhf_strategy(**data):
    return types.SimpleNamespace(args=types.SimpleNamespace(data=types.SimpleNamespace(**data)), is_rank_0=lambda: True)


class OpenRLHF(unittest.TestCase):
    """OpenRLHF's dataset classes (its wheel's openrlhf.datasets, without
    its GPU dependencies) with its documented flags on rl/6 and pairs/2."""

    def test_sft_dataset_rl_rows(self):
        """SFTDataset --input_key prompt --output_key response_messages
        --apply_chat_template: the tokens it trains are redraft's response
        track preceded by Qwen3's empty think block (which the qwen3 track
        counts as prompt): OpenRLHF renders the prompt without
        enable_thinking=False."""
        from openrlhf.datasets import SFTDataset

        tok = tokenizer()
        src = rows(ARGS.run, "rl")
        self.assertTrue(all(r["error"] is None for r in src))
        ds = SFTDataset(load(ARGS.run, "rl"), tok, 4096,
                        openrlhf_strategy(input_key="prompt", output_key="response_messages", apply_chat_template=True),
                        num_processors=1)
        self.assertEqual(len(ds), len(src))
        think = tok.encode("<think>\n\n</think>\n\n", add_special_tokens=False)
        self.assertEqual(len(think), 4)
        for i, r in enumerate(src):
            input_ids, _, loss_mask = ds[i]
            ids, mask = input_ids[0].tolist(), loss_mask[0].tolist()
            # OpenRLHF's loss mask is shifted: mask[j] = 1 trains token j + 1.
            got = [ids[j + 1] for j in range(len(ids) - 1) if mask[j]]
            self.assertEqual(ids, r["input_ids"], i)
            self.assertEqual(r["prompt_ids"][-4:], think)
            self.assertEqual(got, think + r["response_ids"], i)

    def test_prompt_dataset_rl_rows(self):
        from openrlhf.datasets import PromptDataset

        tok = tokenizer()
        src = rows(ARGS.run, "rl")
        ds = PromptDataset(load(ARGS.run, "rl"), tok, openrlhf_strategy(input_key="prompt", label_key="reference",
                                                                       apply_chat_template=True))
        self.assertEqual(len(ds), len(src))
        for i, r in enumerate(src):
            _, prompt, label, _ = ds[i]
            self.assertEqual(prompt, tok.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True))
            self.assertEqual(label, r["reference"])

    def test_reward_dataset_dpo_pairs(self):
        from openrlhf.datasets import RewardDataset

        tok = tokenizer()
        src = rows(ARGS.run, "pairs")
        ds = RewardDataset(load(ARGS.run, "pairs"), tok, 4096,
                           openrlhf_strategy(prompt_key="prompt", chosen_key="chosen", rejected_key="rejected",
                                             apply_chat_template=True), is_dpo=True, num_processors=1)
        self.assertEqual(len(ds), len(src))
        for i, r in enumerate(src):
            chosen_ids, _, rejected_ids, _, prompt_len = ds[i]
            for side, got in (("chosen", chosen_ids), ("rejected", rejected_ids)):
                full = tok.apply_chat_template(r["prompt"] + r[side], tokenize=False).rstrip("\n")
                self.assertEqual(tok.decode(got[0]), full)
            prompt = tok.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True)
            self.assertEqual(prompt_len, len(tok.encode(prompt, add_special_tokens=False)))
        batch = ds.collate_fn([ds[i] for i in range(min(4, len(ds)))])
        self.assertEqual(len(batch), 5)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--sft", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--tokenizer", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v"] + rest)


if __name__ == "__main__":
    main()
