// Package agent runs agent episodes: a policy (a model endpoint, or the
// environment's own gold actions) acting in an interactive environment
// (rollout/env) until the task is done, the step budget is spent or
// something fails.
//
// An episode is a conversation in OpenAI's chat form. The prompt is a system
// message (the instructions: one action per reply) and a user message with the
// environment's first observation and, when asked, the actions it offers. Then
// each step adds the agent's message (an assistant message: its text, or its
// tool call when the environment offers tools) and what the environment
// answered: a user message for a text command, a tool message (with the
// call's id) for a tool call. The actions sent are exactly what is recorded:
// the text command is the reply's action line (see ParseAction), kept beside
// the whole reply.
//
// Run guarantees:
//   - one environment session per episode, closed on every path (Close is
//     called even when ctx is canceled);
//   - an environment or policy that fails (an HTTP error, a timeout, an
//     answer that is not the protocol's JSON, a refused request) ends that
//     episode only: Episode.End says how it ended and Episode.Reason why,
//     and the steps taken so far are kept;
//   - nothing is invented: a step's reward is nil when the environment gave
//     none, the episode's reward is nil when no step had one, Success is nil
//     when the environment never said.
//
// FirstBadStep locates an episode's first bad action from the environment's
// own signals (an action it refused, a negative reward, leaving the gold
// path), which the agent recipes (Agent-R, STeP, Re-ReST) and the audit use.
// Replay plays a list of actions from a task's start in a fresh session: how
// a recipe reaches a trajectory's shared parent state again.
//
// Tasks reads the JSON lines file of environment tasks (source.kind
// environment), naming the file, line and field of every bad record.
package agent
