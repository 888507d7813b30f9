"""ScienceWorld (PyPI scienceworld; its simulator is a JAR run by Java 17)
served in redraft's environment protocol. Each session holds one simulator
(one JVM, started on first use and reused after its session closes).

Task: "task" is a ScienceWorld task name ("boil", "find-living-thing"; an
unknown name's error lists the 30), "variation" its variation index (0 to the
task's count - 1, in "info.max_variations"). Options: "simplifications"
(ScienceWorld's comma-separated string, "easy" for all), "step_limit" (100),
"valid_actions" (true: "actions" lists every valid command at each step,
several hundred; false, the default: the 25 action templates).

The first observation's text is the task description, then what "look
around" shows. A step's reward is the change of ScienceWorld's score (0 to
100) divided by 100, so an episode's rewards add up to its final score in
[0, 1]; "success" is score == 100; "invalid_action" is the simulator's "No
known action matches that input."; "info" has the raw "score" and "moves".
With "oracle", "gold_actions" is the simulator's gold path.

    scripts/env-server.sh start scienceworld
"""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redraft_env import ActionError, Adapter, TaskError, serve  # noqa: E402

import scienceworld  # noqa: E402
from scienceworld import ScienceWorldEnv  # noqa: E402

NOT_UNDERSTOOD = "No known action matches that input."
AMBIGUOUS = "Ambiguous request"


class ScienceWorld(Adapter):
    def __init__(self):
        self.env = ScienceWorldEnv("", envStepLimit=100)
        self.tasks = list(self.env.get_task_names())
        self.valid = False

    def reset(self, task, variation, seed, options, oracle):
        if task not in self.tasks:
            raise TaskError("unknown ScienceWorld task %r; the tasks are: %s" % (task, ", ".join(self.tasks)))
        n = self.env.get_max_variations(task)
        if variation >= n:
            raise TaskError("task %s has %d variations (0 to %d); %d is out of range" % (task, n, n - 1, variation))
        simpl = options.get("simplifications", "")
        limit = options.get("step_limit", 100)
        if not isinstance(simpl, str):
            raise TaskError("option simplifications must be a string")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise TaskError("option step_limit must be an integer >= 1")
        self.valid = bool(options.get("valid_actions", False))
        try:
            self.env.load(task, variation, simpl, generateGoldPath=bool(oracle))
        except ValueError as e:
            raise TaskError(str(e))
        self.env.envStepLimit = limit
        obs, info = self.env.reset()
        desc = self.env.get_task_description()
        out = {
            "text": "%s\n\n%s" % (desc, obs),
            "actions": self.actions(info),
            "info": {
                "task": task, "variation": variation, "max_variations": n,
                "simplifications": simpl, "step_limit": limit,
                "task_description": desc, "score": info["score"], "moves": info["moves"],
            },
        }
        if oracle:
            out["gold_actions"] = list(self.env.get_gold_action_sequence())
        return out

    def step(self, command):
        if "\n" in command:
            raise ActionError("a ScienceWorld command is one line")
        obs, reward, done, info = self.env.step(command)
        score = info["score"]
        text = obs.strip()
        out = {
            "text": obs,
            "success": score >= 100,
            "invalid_action": text == NOT_UNDERSTOOD,
            "info": {"score": score, "moves": info["moves"], "ambiguous": text.startswith(AMBIGUOUS)},
        }
        if self.valid:
            out["actions"] = list(info["valid"])
        return out, reward / 100.0, bool(done)

    def actions(self, info):
        if self.valid:
            return list(info["valid"])
        return list(self.env.get_possible_actions())

    def close(self):
        self.env.close()


if __name__ == "__main__":
    serve(ScienceWorld, "scienceworld", "ScienceWorld: 30 science tasks in a text world (Wang et al., 2022)",
          getattr(scienceworld, "__version__", ""))
