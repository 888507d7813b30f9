#!/usr/bin/env python3
"""redraft_grade inside the real trainers, on CPU: verl's reward managers and
TRL's GRPOTrainer (the versions pinned in python/trainers-requirements.txt).
bindings/cgrade's TestTrainers runs it with the environment of
scripts/trainers-env.sh and the wheel's contents on PYTHONPATH.

verl: the trainer's own config (verl/trainer/config/_generated_ppo_trainer.yaml)
with reward.custom_reward_function.path=pkg://redraft_grade, loaded by verl's
get_custom_reward_fn; verl's NaiveRewardManager (legacy and reward-loop, which
calls compute_score on an executor thread) and BatchRewardManager score a
DataProto of real GSM8K responses decoded by a byte tokenizer.

TRL: GRPOTrainer with a tiny random Qwen2 model built in code (no hub access)
and a word-level tokenizer; its _calculate_rewards scores conversational
completions through redraft_grade.accuracy_reward, and train() runs one step
whose reward function is called with TRL's real arguments.
"""

import asyncio
import os
import sys
import tempfile
import unittest

# The package under test is the installed one (PYTHONPATH), not the source
# folder next to this script, which has no library.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import numpy as np  # noqa: E402
import torch  # noqa: E402

import redraft_grade as rg  # noqa: E402

ROWS = [
    # (response, ground truth, correct)
    ("Janet sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n#### 18", "18", True),
    ("She makes 9 * 3 = 27 dollars.\n#### 27", "18", False),
    ("The total is \\boxed{\\frac{3}{6}}.", "\\frac12", True),
    ("I am not sure how to solve this one", "7", False),
]


class ByteTokenizer:
    """decode(ids) = the UTF-8 bytes ids, as verl's managers call it."""

    pad_token_id = 0

    def decode(self, ids, skip_special_tokens=True):
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return bytes(i for i in ids if i != 0).decode("utf-8")


def dataproto(rows):
    from verl import DataProto

    prompt_len = 8
    resp = [list(r.encode()) for r, _, _ in rows]
    width = max(map(len, resp))
    prompts = torch.full((len(rows), prompt_len), 0, dtype=torch.long)
    prompts[:, -3:] = torch.tensor(list(b"Q: "))
    responses = torch.zeros((len(rows), width), dtype=torch.long)
    attention = torch.zeros((len(rows), prompt_len + width), dtype=torch.long)
    attention[:, prompt_len - 3 : prompt_len] = 1
    for i, r in enumerate(resp):
        responses[i, : len(r)] = torch.tensor(r)
        attention[i, prompt_len : prompt_len + len(r)] = 1
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses, "attention_mask": attention,
                 "input_ids": torch.cat([prompts, responses], dim=1)},
        non_tensors={
            "data_source": np.array(["openai/gsm8k"] * len(rows), dtype=object),
            "reward_model": np.array([{"ground_truth": gt, "style": "rule"} for _, gt, _ in rows], dtype=object),
            "extra_info": np.array([{"index": i} for i in range(len(rows))], dtype=object),
        },
    ), [len(r) for r in resp]


def verl_config():
    import verl
    from omegaconf import OmegaConf

    path = os.path.join(os.path.dirname(verl.__file__), "trainer", "config", "_generated_ppo_trainer.yaml")
    cfg = OmegaConf.load(path)
    cfg.reward.custom_reward_function.path = "pkg://redraft_grade"
    cfg.reward.custom_reward_function.name = "compute_score"
    return cfg


class Verl(unittest.TestCase):
    def test_custom_reward_function(self):
        from verl.trainer.ppo.reward import get_custom_reward_fn
        from verl.workers.reward_manager.naive import NaiveRewardManager

        fn = get_custom_reward_fn(verl_config())
        self.assertIsNotNone(fn)
        data, lens = dataproto(ROWS)
        out = NaiveRewardManager(tokenizer=ByteTokenizer(), num_examine=1, compute_score=fn)(data, return_dict=True)
        tensor = out["reward_tensor"]
        for i, (_, _, ok) in enumerate(ROWS):
            self.assertEqual(tensor[i, lens[i] - 1].item(), 1.0 if ok else 0.0, i)
            self.assertEqual(tensor[i].sum().item(), 1.0 if ok else 0.0, i)
        self.assertEqual(out["reward_extra_info"]["acc"], [ok for _, _, ok in ROWS])
        self.assertEqual(out["reward_extra_info"]["pred"][:2], ["18", "27"])

    def test_reward_loop_executor_thread(self):
        """verl's reward-loop NaiveRewardManager runs compute_score on the
        event loop's executor (a non-main thread, where SIGALRM timeouts
        cannot work)."""
        from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
        from verl.trainer.ppo.reward import get_custom_reward_fn

        cfg = verl_config()
        mgr = NaiveRewardManager(cfg, ByteTokenizer(), get_custom_reward_fn(cfg))
        data, _ = dataproto(ROWS)

        async def all_rows():
            return await asyncio.gather(*(mgr.run_single(data[i : i + 1]) for i in range(len(ROWS))))

        got = mgr.loop.run_until_complete(all_rows())
        self.assertEqual([g["reward_score"] for g in got], [1.0 if ok else 0.0 for _, _, ok in ROWS])
        self.assertEqual(got[0]["reward_extra_info"]["rule"], "equal:string")

    def test_batch_reward_manager(self):
        from verl.workers.reward_manager.batch import BatchRewardManager

        data, lens = dataproto(ROWS)
        mgr = BatchRewardManager(tokenizer=ByteTokenizer(), num_examine=0, compute_score=rg.compute_score_batch)
        out = mgr(data, return_dict=True)
        for i, (_, _, ok) in enumerate(ROWS):
            self.assertEqual(out["reward_tensor"][i, lens[i] - 1].item(), 1.0 if ok else 0.0, i)


def tiny_grpo(tmp, reward_funcs, rows):
    from datasets import Dataset
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    words = ["<pad>", "<eos>", "<unk>", "user", "assistant", ":", "What", "is", "2", "+", "?", "4", "5", "#"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}assistant : {% endif %}"
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                                         pad_token_id=0, eos_token_id=1, bos_token_id=1))
    args = GRPOConfig(output_dir=tmp, per_device_train_batch_size=2, num_generations=2, max_completion_length=6,
                      max_steps=1, learning_rate=1e-4, logging_steps=1, report_to="none", use_cpu=True, bf16=False,
                      save_strategy="no", seed=0, dataloader_num_workers=0)
    ds = Dataset.from_list(rows)
    return GRPOTrainer(model=model, reward_funcs=reward_funcs, args=args, train_dataset=ds, processing_class=tokenizer)


class TRL(unittest.TestCase):
    rows = [{"prompt": [{"role": "user", "content": "What is 2 + 2 ?"}], "solution": "4"}] * 4

    def test_calculate_rewards(self):
        """GRPOTrainer's own reward step (_calculate_rewards) with
        conversational completions, one right, one wrong, one in parts,
        one without a reference (NaN)."""
        with tempfile.TemporaryDirectory() as tmp:
            trainer = tiny_grpo(tmp, [rg.accuracy_reward], self.rows)
            inputs = [dict(r) for r in self.rows]
            inputs[3] = dict(inputs[3], solution="")
            prompts = [r["prompt"] for r in inputs]
            completions = [
                [{"role": "assistant", "content": "2 + 2 = 4 so \\boxed{4}"}],
                [{"role": "assistant", "content": "The answer is 5."}],
                [{"role": "assistant", "content": [{"type": "text", "text": "#### 4"}]}],
                [{"role": "assistant", "content": "\\boxed{4}"}],
            ]
            rewards = trainer._calculate_rewards(inputs, prompts, completions, [[1]] * 4)
            got = rewards[:, 0].tolist()
            self.assertEqual(got[:3], [1.0, 0.0, 1.0])
            self.assertTrue(np.isnan(got[3]), got)

    def test_train_step(self):
        """One GRPO step on CPU: TRL calls the reward function with the
        prompts, conversational completions, completion ids, the solution
        column and its callbacks."""
        calls = []

        def recording(completions, **kwargs):
            calls.append((completions, kwargs))
            return rg.accuracy_reward(completions, **kwargs)

        with tempfile.TemporaryDirectory() as tmp:
            trainer = tiny_grpo(tmp, [recording], self.rows)
            trainer.train()
        self.assertTrue(calls)
        completions, kwargs = calls[0]
        self.assertIsInstance(completions[0], list)
        self.assertEqual(completions[0][0]["role"], "assistant")
        self.assertEqual(kwargs["solution"], ["4"] * len(completions))
        for k in ("prompts", "completion_ids", "trainer_state", "log_extra", "log_metric"):
            self.assertIn(k, kwargs)


if __name__ == "__main__":
    print("python", sys.version.split()[0])
    unittest.main(verbosity=2)
