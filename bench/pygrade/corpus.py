"""Builds bench/pygrade's corpus: N real responses with their reference
answers, from the repository's bundled data, as JSON lines
{"response", "gold", "source", "label", "data_source", "repeat"}.

  corpus.py ROOT OUT.jsonl [N]

Distinct texts, in this order:
  gsm8k_model      5,276 GPT-3 solutions to GSM8K test problems (4 models), gold the reference
                   answer, label OpenAI's is_correct (testdata/gsm8k/example_model_solutions.jsonl)
  gsm8k_reference  1,319 GSM8K reference solutions ("... A: 18"), label true
  mr_gsm8k         590 model solutions from MR-GSM8K (steps joined), label its answer correctness
  prm800k          106 PRM800K phase-1 test trajectories (the chosen or human step of each
                   step, joined), gold the MATH answer, no label
  math500          500 MATH-500 reference solutions (\\boxed answers), label true
  public           388 predictions of the public grader cases, label the asserted verdict
then, to reach N, the list again from its start, marked "repeat": true.
"""
import gzip
import json
import os
import sys


def gsm8k_gold(ground_truth):
    return ground_truth.rsplit("A:", 1)[-1].strip()


def build(root):
    items = []
    path = os.path.join(root, "testdata", "gsm8k", "example_model_solutions.jsonl")
    refs = []
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        gold = gsm8k_gold(d["ground_truth"])
        for k in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
            items.append({"response": d[k]["solution"], "gold": gold, "source": "gsm8k_model",
                          "label": bool(d[k]["is_correct"]), "data_source": "openai/gsm8k"})
        refs.append({"response": d["ground_truth"], "gold": gold, "source": "gsm8k_reference", "label": True,
                     "data_source": "openai/gsm8k"})
    items += refs
    with gzip.open(os.path.join(root, "testdata", "mr_gsm8k", "first_error_590.jsonl.gz"), "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            items.append({"response": "\n".join(d["model_output_steps"]), "gold": str(d["ground_truth_answer"]),
                          "source": "mr_gsm8k", "label": d["model_output_answer_correctness"] == "correct",
                          "data_source": "openai/gsm8k"})
    with gzip.open(os.path.join(root, "testdata", "prm800k", "phase1_reconstructed.jsonl.gz"), "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            gold = d["question"].get("ground_truth_answer")
            if not gold:
                continue
            steps = []
            for s in d["label"]["steps"]:
                c = s.get("chosen_completion")
                if c is not None:
                    steps.append(s["completions"][c]["text"])
                elif s.get("human_completion"):
                    steps.append(s["human_completion"]["text"])
                else:
                    steps.append(s["completions"][0]["text"])
            items.append({"response": "\n".join(steps), "gold": gold, "source": "prm800k", "label": None,
                          "data_source": "HuggingFaceH4/MATH-500"})
    for line in open(os.path.join(root, "rewards", "mathgrade", "testdata", "math500_test.jsonl"), encoding="utf-8"):
        d = json.loads(line)
        items.append({"response": d["solution"], "gold": d["answer"], "source": "math500", "label": True,
                      "data_source": "HuggingFaceH4/MATH-500"})
    for line in open(os.path.join(root, "rewards", "mathgrade", "testdata", "public_cases.jsonl"), encoding="utf-8"):
        d = json.loads(line)
        items.append({"response": d["prediction"] or "", "gold": d["gold"] or "", "source": "public",
                      "label": bool(d["expected"]), "data_source": "lighteval/MATH"})
    return items


def main():
    root, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    distinct = build(root)
    items = [dict(it, repeat=False) for it in distinct[:n]]
    i = 0
    while len(items) < n:
        items.append(dict(distinct[i % len(distinct)], repeat=True))
        i += 1
    with open(out, "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it) + "\n")
    print(f"{len(items)} responses, {min(n, len(distinct))} distinct", file=sys.stderr)


if __name__ == "__main__":
    main()
