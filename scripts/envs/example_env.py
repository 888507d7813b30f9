"""A complete environment in redraft's protocol, as an example to copy: count
from 1 to N by saying each number ("say 1", "say 2", ...), where N is the
task's variation + 1. Saying a wrong number ends the episode as a failure.

    python3 scripts/envs/example_env.py --port 8770
"""

import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redraft_env import Adapter, TaskError, serve  # noqa: E402


class Counting(Adapter):
    def reset(self, task, variation, seed, options, oracle):
        if task not in ("", "count"):
            raise TaskError("unknown task %r: this environment has one, \"count\"" % task)
        self.goal, self.said = variation + 1, 0
        return {
            "text": "Count from 1 to %d: say each number, one per action (\"say 1\")." % self.goal,
            "actions": ["say NUMBER"],
            "info": {"goal": self.goal},
            "gold_actions": ["say %d" % k for k in range(1, self.goal + 1)],
        }

    def step(self, command):
        m = re.fullmatch(r"\s*say\s+(-?\d+)\s*", command)
        if not m:
            return {"text": "I only understand \"say NUMBER\".", "invalid_action": True, "success": False}, 0.0, False
        if int(m.group(1)) != self.said + 1:
            return {"text": "Wrong: the next number was %d." % (self.said + 1), "success": False}, 0.0, True
        self.said += 1
        won = self.said == self.goal
        return {"text": "Done!" if won else "Good.", "success": won}, 1.0 / self.goal, won


if __name__ == "__main__":
    serve(Counting, "example", "count from 1 to N", "1")
