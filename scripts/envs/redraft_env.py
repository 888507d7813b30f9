"""An HTTP server for one interactive environment, in the OpenEnv style that
redraft's Go client (rollout/env) speaks. Standard library only.

    POST /reset  {"seed", "episode_id", "task", "variation", "options", "oracle"}
    POST /step   {"action": {...}, "episode_id", "timeout_s", "request_id"}
    GET  /state?episode_id=ID
    POST /close  {"episode_id"}
    GET  /health, GET /metadata, GET /sessions

Answers to /reset and /step are openenv-core's ResetResponse/StepResponse,
{"observation": {...}, "reward": number|null, "done": bool}; errors are
{"detail": "..."} with 400 (bad request), 404 (no such session), 409 (the
episode is over), 422 (an action of the wrong shape), 503 (at capacity) or
500 (the environment failed). docs/environments.md has the protocol.

An environment is an Adapter subclass: the server makes one per open session
(at most --max-sessions), keeps closed sessions' adapters for reuse, and calls
one adapter from one thread at a time. serve() parses the command line and
runs the server; see example_env.py for a complete environment.
"""

import argparse
import json
import math
import signal
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PROTOCOL = "redraft-env/1"
MAX_BODY = 1 << 20

# The tool offered when a reset asks for {"options": {"tools": true}}: text
# environments then take their commands as OpenAI tool calls as well.
ACT_TOOL = {
    "type": "function",
    "function": {
        "name": "act",
        "description": "Take one action in the environment, written as a command (for example \"open door to kitchen\").",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string", "description": "the command"}},
            "required": ["command"],
        },
    },
}


class TaskError(ValueError):
    """A reset the environment cannot honour (unknown task, variation out of
    range, a bad option): answered 400 with its message."""


class ActionError(ValueError):
    """An action of the wrong shape: answered 422 with its message."""


class Adapter:
    """One instance of an environment. Subclasses implement reset and step.

    reset(task, variation, seed, options, oracle) returns the first
    observation, a dict with "text" and, when the environment has them,
    "actions" (list of str), "tools" (OpenAI function schemas), "info" (a
    dict) and, when oracle is true, "gold_actions" (list of str). Raise
    TaskError for a task it does not have.

    step(command) takes a text command and returns (observation, reward,
    done): observation a dict with "text" and, when known, "success" (bool)
    and "invalid_action" (bool); reward a finite number or None.
    """

    name = "environment"
    description = ""
    version = ""

    def reset(self, task, variation, seed, options, oracle):
        raise NotImplementedError

    def step(self, command):
        raise NotImplementedError

    def close(self):
        pass


class Session:
    def __init__(self, episode_id, adapter):
        self.id = episode_id
        self.adapter = adapter
        self.lock = threading.Lock()
        self.task = None
        self.steps = 0
        self.done = False
        self.tools = False
        self.used = time.monotonic()


class HTTPError(Exception):
    def __init__(self, status, detail):
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Server:
    def __init__(self, make_adapter, max_sessions, acquire_timeout, idle_timeout, log):
        self.make_adapter = make_adapter
        self.max_sessions = max_sessions
        self.acquire_timeout = acquire_timeout
        self.idle_timeout = idle_timeout
        self.log = log
        self.cond = threading.Condition()
        self.sessions = {}  # episode id -> Session
        self.idle = []  # adapters of closed sessions, for reuse
        self.live = 0  # adapters in existence (in sessions, idle, or being made)
        self.meta = None

    # ---- adapters --------------------------------------------------------
    def acquire(self):
        deadline = time.monotonic() + self.acquire_timeout
        with self.cond:
            while True:
                if self.idle:
                    return self.idle.pop()
                if self.live < self.max_sessions:
                    self.live += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HTTPError(503, "at capacity: %d sessions open (--max-sessions %d); close sessions or start the server with more" % (len(self.sessions), self.max_sessions))
                self.cond.wait(left)
        try:
            return self.make_adapter()
        except BaseException:
            with self.cond:
                self.live -= 1
                self.cond.notify()
            raise

    def release(self, adapter, broken=False):
        if broken:
            try:
                adapter.close()
            except Exception:
                pass
        with self.cond:
            if broken:
                self.live -= 1
            else:
                self.idle.append(adapter)
            self.cond.notify()

    def drop(self, session, broken=False):
        with self.cond:
            if self.sessions.get(session.id) is session:
                del self.sessions[session.id]
            else:
                return False
        self.release(session.adapter, broken)
        return True

    # ---- endpoints -------------------------------------------------------
    def reset(self, body):
        episode_id = body.get("episode_id") or "anon-" + uuid.uuid4().hex
        if not isinstance(episode_id, str) or len(episode_id) > 255:
            raise HTTPError(400, "episode_id must be a string of at most 255 characters")
        task = body.get("task") or ""
        variation = body.get("variation", 0)
        seed = body.get("seed")
        options = body.get("options") or {}
        oracle = bool(body.get("oracle", False))
        if not isinstance(task, str):
            raise HTTPError(400, "task must be a string")
        if not isinstance(variation, int) or isinstance(variation, bool) or variation < 0:
            raise HTTPError(400, "variation must be an integer >= 0")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise HTTPError(400, "seed must be an integer >= 0 or null")
        if not isinstance(options, dict):
            raise HTTPError(400, "options must be an object")
        with self.cond:
            session = self.sessions.get(episode_id)
        if session is None:
            session = Session(episode_id, self.acquire())
            with self.cond:
                if episode_id in self.sessions:  # a concurrent reset of the same id won
                    self.release(session.adapter)
                    session = self.sessions[episode_id]
                else:
                    self.sessions[episode_id] = session
            self.log("open %s (%d open)" % (episode_id, len(self.sessions)))
        with session.lock:
            try:
                obs = session.adapter.reset(task, variation, seed, options, oracle)
            except TaskError as e:
                self.drop(session)
                raise HTTPError(400, str(e))
            except Exception as e:
                self.drop(session, broken=True)
                raise HTTPError(500, "reset failed: %s" % one_line(e))
            session.task = {"env": self.meta["name"], "task": task, "variation": variation, "seed": seed, "options": options}
            session.steps, session.done = 0, False
            session.tools = bool(options.get("tools"))
            session.used = time.monotonic()
            obs = dict(obs)
            if session.tools:
                obs["tools"] = [ACT_TOOL]
            if not oracle:
                obs.pop("gold_actions", None)
            obs["episode_id"] = episode_id
            return {"observation": obs, "reward": None, "done": False}

    def step(self, body):
        session = self.find(body)
        action = body.get("action")
        if not isinstance(action, dict):
            raise HTTPError(422, "action must be an object")
        with session.lock:
            if session.done:
                raise HTTPError(409, "the episode is over (done after step %d); reset it" % session.steps)
            session.used = time.monotonic()
            if action.get("type") == "call_tool":
                name = action.get("tool_name")
                args = action.get("arguments") or {}
                command = args.get("command") if isinstance(args, dict) else None
                if not session.tools or name != "act":
                    return self.tool_error(session, name, "tool_not_found", "no tool %r here" % (name,))
                if not isinstance(command, str):
                    return self.tool_error(session, name, "invalid_args", 'act takes {"command": "<a command>"}')
            else:
                command = action.get("text")
                if not isinstance(command, str):
                    raise HTTPError(422, 'a text action is {"text": "<command>"}')
            try:
                obs, reward, done = session.adapter.step(command)
            except ActionError as e:
                raise HTTPError(422, str(e))
            except Exception as e:
                self.drop(session, broken=True)
                raise HTTPError(500, "step failed: %s" % one_line(e))
            if reward is not None:
                reward = float(reward)
                if math.isnan(reward) or math.isinf(reward):
                    self.drop(session, broken=True)
                    raise HTTPError(500, "the environment gave a reward that is not finite: %r" % reward)
            session.steps += 1
            session.done = bool(done)
            obs = dict(obs)
            if action.get("type") == "call_tool":
                obs["tool_name"] = "act"
            return {"observation": obs, "reward": reward, "done": bool(done)}

    @staticmethod
    def tool_error(session, name, kind, message):
        # OpenEnv's CallToolObservation with a ToolError; the text is the
        # message, for the agent to read. The world did not change.
        session.steps += 1
        obs = {"text": "Error: " + message, "tool_name": name, "error": {"error_type": kind, "message": message}, "invalid_action": True}
        return {"observation": obs, "reward": 0.0, "done": False}

    def state(self, query):
        ids = query.get("episode_id")
        if not ids:
            with self.cond:
                return {"episode_id": None, "step_count": 0, "active_sessions": len(self.sessions), "max_sessions": self.max_sessions}
        session = self.find({"episode_id": ids[0]})
        return {"episode_id": session.id, "step_count": session.steps, "done": session.done, "task": session.task}

    def close(self, body):
        episode_id = body.get("episode_id")
        with self.cond:
            session = self.sessions.get(episode_id)
        if session is None:
            return {"episode_id": episode_id, "closed": False}
        with session.lock:
            closed = self.drop(session)
        if closed:
            self.log("close %s after %d steps (%d open)" % (episode_id, session.steps, len(self.sessions)))
        return {"episode_id": episode_id, "closed": closed}

    def find(self, body):
        episode_id = body.get("episode_id")
        if not isinstance(episode_id, str):
            raise HTTPError(400, "episode_id is required (this server keeps one session per episode id)")
        with self.cond:
            session = self.sessions.get(episode_id)
        if session is None:
            raise HTTPError(404, "no session %r (never reset, closed, or closed as idle)" % episode_id)
        return session

    def capacity(self):
        with self.cond:
            return {"active_sessions": len(self.sessions), "max_sessions": self.max_sessions}

    def reap(self):
        while True:
            time.sleep(min(30.0, max(1.0, self.idle_timeout / 4)))
            now = time.monotonic()
            with self.cond:
                stale = [s for s in self.sessions.values() if now - s.used > self.idle_timeout]
            for s in stale:
                if s.lock.acquire(blocking=False):
                    try:
                        if time.monotonic() - s.used > self.idle_timeout and self.drop(s):
                            self.log("closed %s: idle for more than %gs" % (s.id, self.idle_timeout))
                    finally:
                        s.lock.release()


def one_line(e):
    text = "%s: %s" % (type(e).__name__, e)
    return " ".join(text.split())[:500]


def make_handler(server):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # requests are not logged
            pass

        def answer(self, status, obj):
            body = json.dumps(obj, allow_nan=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                raise HTTPError(413, "request longer than %d bytes" % MAX_BODY)
            raw = self.rfile.read(n) if n else b"{}"
            try:
                obj = json.loads(raw)
            except ValueError as e:
                raise HTTPError(400, "the body is not JSON: %s" % e)
            if not isinstance(obj, dict):
                raise HTTPError(400, "the body is not a JSON object")
            return obj

        def route(self, method):
            url = urlparse(self.path)
            try:
                if method == "POST" and url.path == "/reset":
                    out = server.reset(self.body())
                elif method == "POST" and url.path == "/step":
                    out = server.step(self.body())
                elif method == "POST" and url.path == "/close":
                    out = server.close(self.body())
                elif method == "GET" and url.path == "/state":
                    out = server.state(parse_qs(url.query))
                elif method == "GET" and url.path == "/health":
                    out = {"status": "healthy"}
                elif method == "GET" and url.path == "/metadata":
                    out = server.meta
                elif method == "GET" and url.path == "/sessions":
                    out = server.capacity()
                else:
                    raise HTTPError(404, "no endpoint %s %s" % (method, url.path))
                self.answer(200, out)
            except HTTPError as e:
                if e.status >= 500:
                    server.log("%s %s: %d %s" % (method, url.path, e.status, e.detail))
                self.answer(e.status, {"detail": e.detail})
            except Exception as e:
                server.log("%s %s: %s" % (method, url.path, traceback.format_exc()))
                self.answer(500, {"detail": one_line(e)})

        def do_GET(self):
            self.route("GET")

        def do_POST(self):
            self.route("POST")

    return Handler


def serve(make_adapter, name, description="", version="", argv=None):
    """Runs the server for the adapters make_adapter() returns, until killed.
    Prints "listening on http://HOST:PORT" on stdout when it accepts
    connections."""
    p = argparse.ArgumentParser(description="%s environment server (%s)" % (name, PROTOCOL))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--max-sessions", type=int, default=4, help="sessions open at once (each holds one environment instance)")
    p.add_argument("--acquire-timeout", type=float, default=60.0, help="seconds a reset waits for a free instance before answering 503")
    p.add_argument("--idle-timeout", type=float, default=900.0, help="seconds after which an unused session is closed")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)

    def log(msg):
        if not a.quiet:
            print("%s %s: %s" % (time.strftime("%H:%M:%S"), name, msg), file=sys.stderr, flush=True)

    server = Server(make_adapter, a.max_sessions, a.acquire_timeout, a.idle_timeout, log)
    server.meta = {"name": name, "description": description, "version": version}
    httpd = ThreadingHTTPServer((a.host, a.port), make_handler(server))
    httpd.daemon_threads = True
    threading.Thread(target=server.reap, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    host, port = httpd.server_address[:2]
    print("listening on http://%s:%d" % (host, port), flush=True)
    log("%s %s, up to %d sessions" % (PROTOCOL, version, a.max_sessions))
    try:
        httpd.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        with server.cond:
            adapters = [s.adapter for s in server.sessions.values()] + server.idle
        for ad in adapters:
            try:
                ad.close()
            except Exception:
                pass
