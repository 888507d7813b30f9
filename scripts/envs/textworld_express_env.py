"""TextWorldExpress (PyPI textworld-express; its simulator is a JAR run by
Java 17) served in redraft's environment protocol: fast text games (coin,
cookingworld, twc, mapreader, arithmetic, sorting, simonsays, peckingorder).
Each session holds one simulator (one JVM, reused after its session closes).

Task: "task" is the game's name, "variation" the game's seed (the game
generated from it; TextWorldExpress's own folds are seed ranges). Options:
"params" (TextWorldExpress's game parameters, "numLocations=4,includeDoors=0"),
"step_limit" (100).

The first observation's text is the task description, then the room.
"actions" lists the valid commands at each step. A step's reward is the change
of the game's score (0 to 1); "success" is the game's task success;
"invalid_action" is its "Unknown action" answer; "info" has "score", "moves"
and "task_failure". With "oracle", "gold_actions" is the game's gold path.

    scripts/env-server.sh start textworld-express
"""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redraft_env import ActionError, Adapter, TaskError, serve  # noqa: E402

import textworld_express  # noqa: E402
from textworld_express import TextWorldExpressEnv  # noqa: E402

UNKNOWN = "Unknown action"


class TextWorldExpress(Adapter):
    def __init__(self):
        self.env = TextWorldExpressEnv(envStepLimit=100)
        self.games = list(self.env.getGameNames())

    def reset(self, task, variation, seed, options, oracle):
        if task not in self.games:
            raise TaskError("unknown TextWorldExpress game %r; the games are: %s" % (task, ", ".join(self.games)))
        params = options.get("params", "")
        limit = options.get("step_limit", 100)
        if not isinstance(params, str):
            raise TaskError("option params must be a string")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise TaskError("option step_limit must be an integer >= 1")
        self.env.envStepLimit = limit
        try:
            obs, info = self.env.reset(seed=variation, gameFold="train", gameName=task, gameParams=params,
                                       generateGoldPath=bool(oracle))
        except ValueError as e:
            raise TaskError(str(e).strip())
        desc = info["taskDescription"]
        out = {
            "text": "%s\n\n%s" % (desc, obs),
            "actions": list(info["validActions"]),
            "info": {"task": task, "variation": variation, "params": params, "step_limit": limit,
                     "task_description": desc, "score": info["score"], "moves": 0},
        }
        if oracle:
            out["gold_actions"] = list(self.env.getGoldActionSequence())
        return out

    def step(self, command):
        if "\n" in command:
            raise ActionError("a TextWorldExpress command is one line")
        obs, reward, done, info = self.env.step(command)
        out = {
            "text": obs,
            "actions": list(info.get("validActions", [])),
            "success": bool(info["tasksuccess"]),
            "invalid_action": obs.strip().startswith(UNKNOWN),
            "info": {"score": info["score"], "moves": info["numMoves"], "task_failure": bool(info["taskfailure"])},
        }
        return out, float(reward), bool(done)

    def close(self):
        self.env.close()


if __name__ == "__main__":
    serve(TextWorldExpress, "textworld-express", "TextWorldExpress: fast text games (Jansen & Cote, 2022)",
          getattr(textworld_express, "__version__", ""))
