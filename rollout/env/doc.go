// Package env connects redraft to interactive environments: text worlds,
// tool servers, simulators. An Environment opens Sessions; a Session plays
// one episode: Reset with a Task returns the first Observation (text, the
// actions or tools on offer, info, and on request the task's gold actions),
// each Step with an Action (text or an OpenAI tool call) returns a
// StepResult (observation, reward, done, success, invalid action), and
// Close frees it.
//
// Client is an Environment served over HTTP in the OpenEnv style: POST
// /reset, POST /step and GET /state with openenv-core's JSON shapes, plus
// an "episode_id" on every request that names the session (OpenEnv's own
// HTTP endpoints keep no session between calls), and POST /close.
// docs/environments.md has the protocol in full and the servers that
// scripts/env-server.sh runs (ScienceWorld, TextWorldExpress).
//
// # Guarantees
//
//   - Every failure is an *Error with the call, the server's URL (without
//     credentials), a Kind and a one-line Reason meant for an episode's
//     row: an HTTP status other than 200 (with the server's detail), no
//     answer within the call's timeout, an answer that is not the
//     protocol's JSON (named field by field), a connection that fails.
//     Nothing a server sends makes the client panic, and no call outlives
//     its timeout or its context.
//   - Only Reset is ever sent twice, and only when the connection failed
//     before an answer (Config.ResetAttempts); a reset is idempotent,
//     because the session's episode id names it.
//   - At most Config.MaxSessions sessions are open at once; Open waits for
//     a place. Close always frees the place, and always tries to tell the
//     server, under its own timeout, even when the caller's context is
//     canceled.
//   - After a step fails, or returns Done, the session takes no more
//     steps (the step may have happened or not); Reset may start a new
//     episode in it.
//   - A reward the server did not give is nil, never 0; a success it did
//     not report is nil.
package env
