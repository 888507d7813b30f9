// Package plugin gets rewards from external verifiers: a long-running
// subprocess that speaks JSON lines, or an HTTP endpoint, both speaking
// the protocol redraft-verifier/1 (docs/plugins.md has the messages in
// full). A Client sends Requests (one response to one task each) and
// returns one Result per request, in order.
//
// # Results
//
// Verify never fails as a whole and never turns a failure into a number:
// a request without a usable answer gets a nil Score, Failed and a Reason
// that says what happened. A nil Score with Failed false is the verifier's
// own verdict (it could not score the response), with its reason, or "the
// verifier gave no score and no reason". A Score is always a finite
// number. The client's reasons start with one of:
//
//   - "verifier exited: <status>[ (<why it was killed>)]; stderr: <its last
//     lines>" — the plug-in process ended while the request was in flight;
//   - "timeout after <T>s" — no answer within Config.Timeout of the
//     request being written (subprocess) or of the POST (HTTP); with what
//     the plug-in wrote that answered nothing, if anything;
//   - "malformed answer (...)", "bad answer: <field>: ...", "answer line
//     longer than ..." — the answer named the request but could not be
//     used (a score that is not a finite number, NaN and 1e999 included;
//     a field of the wrong type);
//   - "verifier answered <status>: <body>" (HTTP), "verifier unreachable:
//     ..." (HTTP, after its retries);
//   - "verifier unavailable (...)" — no plug-in process is left to run it;
//   - "canceled: ..." — the caller's context ended; "verifier closed";
//     "bad request: ..." — the request could not be encoded.
//
// # Subprocess transport
//
// Config.Command runs Config.Concurrency processes. Each must write, as
// its first line on stdout, the handshake {"protocol":
// "redraft-verifier/1", "name": ..., "version": ...}, within StartTimeout,
// or Open fails quoting its stderr. Then the client writes one request per
// line on its stdin and reads one answer per line on its stdout, matched
// by id: answers may come in any order. A process has at most Config.Batch
// requests outstanding (its window); callers' requests wait for a free
// place in some process's window, which only their context bounds, and
// the timeout starts when a request is written. A line that names no
// outstanding request (not JSON, no string id, an id not outstanding) is
// counted in Stats.Stray and quoted in the reason of the next request
// that times out; a line that names one but is malformed fails that
// request with what was wrong.
//
// A process that exits fails its outstanding requests ("verifier
// exited"), and is started again after a backoff (0.2 s doubling to 10 s)
// for later requests; after Config.Restarts exits in a row without a
// single answer it is given up, and when every process is given up, the
// requests get "verifier unavailable". A request that times out in a
// process that has answered nothing since the request was written finds
// it stuck: the process is killed (with its process group) and restarted
// in the same way. Requests are never sent twice: a crash fails them.
//
// The process starts in a process group of its own, in Config.Dir, with a
// minimal environment: PATH, HOME, LANG and the variables whose names
// start with PYTHON, when the host has them, and what Config.Env lists
// (NAME passes the host's value, NAME=VALUE sets one). No other variable
// of the host's, and so no API key, reaches it. Its stderr is kept (the
// last 64 KiB) for the reasons, which quote its last 5 lines (at most
// 1000 bytes, URLs without their credentials). Close closes its stdin,
// waits 5 seconds for it to exit and then kills the group.
//
// # HTTP transport
//
// Config.URL receives POSTs of {"requests": [...]} with at most
// Config.Batch requests each, and answers {"results": [...]}: one result
// per request, in the requests' order (an id, when a result has one, must
// be its request's). Open POSTs an empty batch as the handshake. At most
// Config.Concurrency POSTs are in flight. A POST that fails to connect or
// gets a 5xx or 429 is sent again, up to Config.Retries attempts in all,
// after a backoff (full jitter: uniform in [0, min(10 s, 0.2 s·2^(k-1))]
// before attempt k+1, or the server's Retry-After in seconds when
// longer, at most 10 s); a POST that times out is not (a slow verifier
// stays slow), nor one answered with another 4xx or a malformed body: its
// requests get the status and the body's first 200 bytes. With
// Config.APIKeyEnv the variable's value is sent as a bearer token; it is
// removed from every reason, as are the URL's credentials.
//
// Retries (HTTP) and restarts (subprocess) are for transport failures
// only: the verifier's own nil is an answer and is never asked again.
//
// # Concurrency
//
// A Client is safe for use by many goroutines: each Verify call waits for
// its own requests only. Every goroutine the Client starts ends by the
// time Close returns; Verify calls in progress then get "verifier
// closed".
package plugin
