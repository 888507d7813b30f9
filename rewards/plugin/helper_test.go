package plugin

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The fake plug-ins are this test binary run again with -plugin-helper
// MODE [ARG]: TestMain runs helperMain instead of the tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "-plugin-helper" {
		helperMain(os.Args[2], os.Args[3:])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperCommand is the command that runs the fake plug-in in mode.
func helperCommand(mode string, args ...string) []string {
	return append([]string{os.Args[0], "-plugin-helper", mode}, args...)
}

// helperMain is a fake plug-in. Its handshake, per mode:
//
//	nohello    writes "hello there" first
//	wrongproto says it speaks redraft-verifier/9
//	exitearly  writes to stderr and exits 2 before its first line
//	silent     never writes a first line (and exits at end of input)
//
// and otherwise {"protocol": "redraft-verifier/1", "name": "fake"}. Then
// it answers, per mode:
//
//	echo       each request at once (see answerLine)
//	reverse N  N requests at a time, in reverse order
//	crash N    N requests at a time, in order up to a request whose response
//	           is "crash", then it writes to stderr and exits 3
//	shuffle    whatever it has read so far, in reverse order
//	die        exits 1 at its first request, after writing to stderr
func helperMain(mode string, args []string) {
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	emit := func(lines ...string) {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range lines {
			out.WriteString(l + "\n")
		}
		out.Flush()
	}
	switch mode {
	case "nohello":
		emit("hello there")
	case "wrongproto":
		emit(`{"protocol": "redraft-verifier/9"}`)
	case "exitearly":
		fmt.Fprintln(os.Stderr, "Traceback (most recent call last):\nModuleNotFoundError: No module named 'reasoning_gym'")
		os.Exit(2)
	case "silent":
	default:
		emit(`{"protocol": "redraft-verifier/1", "name": "fake", "version": "0"}`)
	}
	n := 1
	if len(args) > 0 {
		n, _ = strconv.Atoi(args[0])
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	lines := make(chan Request)
	go func() {
		defer close(lines)
		for in.Scan() {
			var r Request
			if err := json.Unmarshal(in.Bytes(), &r); err != nil {
				fmt.Fprintln(os.Stderr, "bad request line:", err)
				os.Exit(4)
			}
			lines <- r
		}
	}()
	var held []Request
	for r := range lines {
		switch mode {
		case "echo", "silent", "nohello", "wrongproto":
			emit(answerLine(r)...)
		case "die":
			fmt.Fprintln(os.Stderr, "dying on request", r.ID)
			os.Exit(1)
		case "reverse", "crash":
			held = append(held, r)
			if len(held) < n {
				continue
			}
			if mode == "reverse" {
				for i := len(held) - 1; i >= 0; i-- {
					emit(answerLine(held[i])...)
				}
			} else {
				for _, h := range held {
					if h.Response == "crash" {
						fmt.Fprintln(os.Stderr, "boom: the verifier fell over")
						os.Exit(3)
					}
					emit(answerLine(h)...)
				}
			}
			held = held[:0]
		case "shuffle":
			held = append(held[:0], r)
		more:
			for {
				select {
				case r, ok := <-lines:
					if !ok {
						break more
					}
					held = append(held, r)
				default:
					break more
				}
			}
			for i := len(held) - 1; i >= 0; i-- {
				emit(answerLine(held[i])...)
			}
		}
	}
}

// answerLine is the fake plug-in's answer to r: score 1 when the response
// is the reference, else 0, the response as the answer and the detail
// {"task_id", "response"}; responses that name a misbehaviour get it.
func answerLine(r Request) []string {
	id, _ := json.Marshal(r.ID)
	switch r.Response {
	case "nan":
		return []string{fmt.Sprintf(`{"id": %s, "score": NaN}`, id)}
	case "inf":
		return []string{fmt.Sprintf(`{"id": %s, "score": 1e999}`, id)}
	case "string":
		return []string{fmt.Sprintf(`{"id": %s, "score": "0.5"}`, id)}
	case "truncated":
		return []string{fmt.Sprintf(`{"id": %s, "score": 0.`, id)}
	case "detail-nan":
		return []string{fmt.Sprintf(`{"id": %s, "score": 1, "detail": {"x": -Infinity}}`, id)}
	case "null":
		return []string{fmt.Sprintf(`{"id": %s, "score": null}`, id)}
	case "honest":
		return []string{fmt.Sprintf(`{"id": %s, "score": null, "reason": "cannot parse the response"}`, id)}
	case "prose":
		return []string{"some library printed this"}
	case "hang":
		// A stray line first, so that a test knows the request arrived.
		return []string{`{"id": "arrived", "score": 1}`}
	case "unknown":
		return append([]string{`{"id": "no-such-id", "score": 1}`}, plainAnswer(r))
	case "env":
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		d, _ := json.Marshal(env)
		return []string{fmt.Sprintf(`{"id": %s, "score": 1, "detail": %s}`, id, d)}
	}
	return []string{plainAnswer(r)}
}

func plainAnswer(r Request) string {
	score := 0.0
	if r.Response == r.Reference {
		score = 1
	}
	b, _ := json.Marshal(map[string]any{
		"id": r.ID, "score": score, "correct": score == 1, "answer": r.Response,
		"detail": map[string]string{"task_id": r.TaskID, "response": r.Response},
	})
	return string(b)
}
