"""Renders conversations with a model's own chat template, for the Go Render tests.

usage: chat_template.py TOKENIZER_CONFIG_JSON < conversations.jsonl > texts.jsonl

Each input line is a JSON list of OpenAI chat messages ({"role", "content"}, with "tool_calls" on an
assistant message and "tool_call_id" on a tool result), or an object {"messages": [...], "tools":
[...]} for a conversation that declares tools; each output line the JSON string that the
tokenizer_config.json's chat_template renders for it with add_generation_prompt=False.
The Jinja environment is set up the way transformers' apply_chat_template sets it up
(sandboxed, trim_blocks, lstrip_blocks, loopcontrols, a tojson filter, raise_exception), with
the special tokens of the config as variables. Needs jinja2; exits with status 3 without it.
"""

import json
import sys

try:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("jinja2 is not installed", file=sys.stderr)
    sys.exit(3)


def raise_exception(message):
    raise ValueError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(cfg["chat_template"])
    special = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        value = cfg.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        special[key] = value
    for line in sys.stdin:
        conv = json.loads(line)
        tools = None
        if isinstance(conv, dict):
            conv, tools = conv["messages"], conv.get("tools")
        text = template.render(messages=conv, tools=tools, add_generation_prompt=False, **special)
        sys.stdout.write(json.dumps(text) + "\n")


if __name__ == "__main__":
    main()
