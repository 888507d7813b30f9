package rewards

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/rewards/plugin"
	"github.com/redraft/redraft/rollout"
)

// fakePlugin is a verifier speaking redraft-verifier/1: score 1 for the
// reference, 0.5 for "half", no score for "unsure", a malformed answer for
// "garbage", 0 otherwise.
const fakePlugin = `import json, sys
print(json.dumps({"protocol": "redraft-verifier/1", "name": "fake"}), flush=True)
for line in sys.stdin:
    r = json.loads(line)
    resp = r["response"]
    if resp == "garbage":
        print(json.dumps({"id": r["id"], "score": "high"}), flush=True)
    elif resp == "unsure":
        print(json.dumps({"id": r["id"], "score": None, "reason": "cannot parse"}), flush=True)
    else:
        s = 1.0 if resp == r["reference"] else 0.5 if resp == "half" else 0.0
        print(json.dumps({"id": r["id"], "score": s, "answer": resp, "detail": {"task": r["task_id"]}}), flush=True)
`

// The reward stage with a plug-in verifier: its score is the verifiable
// reward, its answer the row's, its reply the detail; a missing score and a
// malformed answer are null with the reason, never 0.
func TestPluginVerifierInComposite(t *testing.T) {
	script := filepath.Join(t.TempDir(), "plugin.py")
	if err := os.WriteFile(script, []byte(fakePlugin), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client, err := plugin.Open(ctx, plugin.Config{Command: []string{"python3", script}, Timeout: rollout.Duration(20 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c := &Composite{Grader: testGrader, Verifier: PluginVerifier{Client: client},
		Parts: []Part{Verifiable{}}, Weights: map[string]float64{"verifiable": 1}}
	g := &rollout.Group{Task: rollout.Task{ID: "t1", Reference: "42"}}
	for i, text := range []string{"42", "half", "7", "unsure", "garbage", ""} {
		g.Samples = append(g.Samples, rollout.Sample{Index: i, Text: text})
	}
	g.Samples[5].Err = "HTTP 500"
	scores, err := c.Score(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		value  float64
		null   string
		answer string
	}{{1, "", "42"}, {0.5, "", "half"}, {0, "", "7"}, {0, "cannot parse", ""}, {0, "score", ""}, {0, "no response", ""}}
	for i, w := range want {
		comp := scores[i].Reward.Components[0]
		switch {
		case w.null != "":
			if comp.Value != nil || !strings.Contains(comp.Reason, w.null) || scores[i].Reward.Total != nil {
				t.Errorf("sample %d: %+v, want null with %q", i, comp, w.null)
			}
		case comp.Value == nil || *comp.Value != w.value || scores[i].Answer != w.answer:
			t.Errorf("sample %d: %+v answer %q, want %g %q", i, comp, scores[i].Answer, w.value, w.answer)
		}
	}
	d, ok := scores[0].Metadata[VerifierDetail].(pluginDetail)
	if !ok || d.Verifier != "fake" || string(d.Detail) != `{"task":"t1"}` || !scores[0].Verdict.Correct || scores[1].Verdict.Correct {
		t.Errorf("detail %+v, verdicts %+v %+v", scores[0].Metadata, scores[0].Verdict, scores[1].Verdict)
	}
}
