package envtest

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/redraft/redraft/rollout/fakeserver"
)

// ReflectorSystem marks a request as a Re-ReST reflector's (its system
// message starts with it): CountingAnswer answers it with the whole count.
const ReflectorSystem = "You repair an agent's failed attempts"

var (
	goalRe  = regexp.MustCompile(`Count from 1 to (\d+)`)
	countRe = regexp.MustCompile(`^(\d+)\.$|^Back to (\d+)\.$`)
)

// CountingAnswer is a model that plays the counting game for a fake
// endpoint: "Action: say N" with the next number, except where wrong(goal,
// step, seed) says to make the wrong move "say 9", after which the episode
// insists on it (so it fails). A reflector's request gets the whole count,
// one numbered action per line.
func CountingAnswer(req *fakeserver.Request, wrong func(goal, step int, seed int64) bool) fakeserver.Reply {
	goal := 0
	for _, m := range req.Messages {
		if g := goalRe.FindStringSubmatch(m.Content); g != nil {
			fmt.Sscan(g[1], &goal)
			break
		}
	}
	if len(req.Messages) > 0 && strings.HasPrefix(req.Messages[0].Content, ReflectorSystem) {
		var b strings.Builder
		for i := 1; i <= goal; i++ {
			fmt.Fprintf(&b, "%d. say %d\n", i, i)
		}
		return fakeserver.Reply{Text: b.String()}
	}
	k, n, insists := 0, 0, false
	for _, m := range req.Messages {
		if m.Role == "assistant" {
			k++
		}
		if c := countRe.FindStringSubmatch(m.Content); m.Role == "user" && c != nil {
			fmt.Sscan(c[1]+c[2], &n)
		}
		insists = insists || m.Content == "Nothing happens."
	}
	var seed int64
	if req.Seed != nil {
		seed = *req.Seed
	}
	if insists || wrong != nil && wrong(goal, k, seed) {
		return fakeserver.Reply{Text: "I count on.\nAction: say 9"}
	}
	return fakeserver.Reply{Text: fmt.Sprintf("I count on.\nAction: say %d", n+1)}
}
