package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// Credentials put in base URLs (user info, query strings) and the API key
// sent as a header never reach anything redraft writes or prints: not the
// manifest, the dataset card, the rows, failures.jsonl, the journal, stdout
// or stderr (issue 14 item 4). The runs go against a fake server that echoes
// the Authorization header in its errors and a closed port whose connection
// errors quote the request URL, for the policy fleet, judges, a critic, a
// step judge and redraft splice's --endpoint.
func TestNoCredentialsWritten(t *testing.T) {
	const key = "sk-HEADERKEY-h1"
	t.Setenv("REDRAFT_CRED_KEY", key)
	secrets := []string{key,
		"policyuser-u1", "POLICYPASS-p1", "DEADQUERY-q1", "DEADSIG-s1",
		"judgeuser-u2", "JUDGEPASS-p2", "judgeuser-u3", "JUDGEPASS-p3", "JUDGEQUERY-q3",
		"criticuser-u4", "CRITICPASS-p4", "CRITICQUERY-q4",
		"stepuser-u5", "STEPPASS-p5", "STEPQUERY-q5",
		"spliceuser-u6", "SPLICEPASS-p6",
		"ERRPASS-p7", "YAMLPASS-p8",
	}
	// Every third request is refused with the credentials it carried.
	echo := func(next fakeserver.Responder) fakeserver.Responder {
		return func(r *fakeserver.Request) fakeserver.Reply {
			if r.Seed != nil && *r.Seed%3 == 0 {
				return fakeserver.Reply{Status: 401, Message: "invalid credentials: " + r.Authorization}
			}
			return next(r)
		}
	}
	policy := fakeserver.New(echo(func(*fakeserver.Request) fakeserver.Reply {
		return fakeserver.Reply{Text: "2 + 2 = 4.\nThe answer is \\boxed{4}."}
	}))
	defer policy.Close()
	judge := fakeserver.New(echo(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: "Score: 7"} }))
	defer judge.Close()
	closed := httptest.NewServer(nil)
	dead := closed.Listener.Addr().String()
	closed.Close()
	live := strings.TrimPrefix(policy.URL, "http://")
	judgeHost := strings.TrimPrefix(judge.URL, "http://")

	var out bytes.Buffer
	check := func(what string, b []byte) {
		t.Helper()
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				i := bytes.Index(b, []byte(s))
				t.Errorf("%s holds %q: ...%s...", what, s, b[max(0, i-80):min(len(b), i+len(s)+40)])
			}
		}
	}
	// checkDir reads every file under dir, and every row of every shard.
	checkDir := func(dir string) {
		t.Helper()
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(dir, p)
			check(rel, b)
			if strings.HasSuffix(p, ".parquet") && strings.Contains(rel, "rl") {
				rows, err := export.ReadRL(context.Background(), p)
				if err != nil {
					t.Fatal(err)
				}
				j, _ := json.Marshal(rows)
				check(rel+" rows", j)
				out.Write(j)
			}
			return nil
		})
	}

	// The generation run: a fleet of a live server (user info) and a dead
	// port (query string), two judges and a critic. The helpers on the dead
	// port make one attempt and keep their breakers shut, as the fleet
	// does, so that no request waits for a breaker (TestDeadJudgeFailsFast
	// times that).
	tasksPath := filepath.Join(t.TempDir(), "tasks.jsonl")
	var tasks strings.Builder
	for i := range 12 {
		fmt.Fprintf(&tasks, `{"id": "t%d", "prompt": "What is 2 + 2?", "reference": "4"}`+"\n", i)
	}
	os.WriteFile(tasksPath, []byte(tasks.String()+"{\n"), 0o644) // a bad last line: the run fails and keeps its journal
	dir := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf(`name: credentials
source: {kind: tasks, path: %s}
endpoint:
  base_urls: ["http://policyuser-u1:POLICYPASS-p1@%s/v1", "http://%s/v1?api-key=DEADQUERY-q1&sig=DEADSIG-s1"]
  model: policy
  api_key_env: REDRAFT_CRED_KEY
  retries: 1
  backoff_initial: 1ms
  backoff_max: 2ms
  breaker_cooldown: 10ms
sampling: {n: 3}
critique:
  mode: cot
  critic: {base_url: "http://criticuser-u4:CRITICPASS-p4@%s/v1?key=CRITICQUERY-q4", model: critic, retries: 1, breaker_failures: 1000}
reward:
  weights: {verifiable: 1, judge: 0.5}
  judges:
    - {name: j1, base_url: "http://judgeuser-u2:JUDGEPASS-p2@%s/v1", model: jm, template: correctness, api_key_env: REDRAFT_CRED_KEY}
    - {name: j2, base_url: "http://judgeuser-u3:JUDGEPASS-p3@%s/v1?token=JUDGEQUERY-q3", model: jm, template: correctness, retries: 1, breaker_failures: 1000}
advantage: {estimator: dr_grpo}
# Failed requests are the point here (their errors must not leak).
pipeline: {max_failure_rate: 1}
output: {dir: %s, shard_rows: 6}
`, tasksPath, live, dead, dead, judgeHost, dead, dir))
	start := time.Now()
	code, stdout, stderr := redraft(t, "run", "--config", cfg, "--progress", "log")
	t.Logf("first run: exit %d after %s", code, time.Since(start))
	if code == 0 || !strings.Contains(stderr, "malformed JSON") {
		t.Fatalf("first run: exit %d: %s", code, stderr)
	}
	check("stdout", []byte(stdout))
	check("stderr", []byte(stderr))
	if _, err := os.Stat(filepath.Join(dir, ".redraft")); err != nil {
		t.Fatalf("the failed run left no journal: %v", err)
	}
	checkDir(dir)
	// Fixed input: the run resumes and completes, then prints its audit.
	os.WriteFile(tasksPath, []byte(tasks.String()), 0o644)
	code, stdout, stderr = redraft(t, "run", "--config", cfg, "--progress", "log")
	t.Logf("resume: exit %d after %s", code, time.Since(start))
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	check("stdout", []byte(stdout))
	check("stderr", []byte(stderr))
	out.Reset()
	checkDir(dir)
	// The credentials were there to leak: requests failed with the
	// connection errors and echoes, and readers still see which endpoints
	// ran.
	m, err := export.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://" + live + "/v1,http://" + dead + "/v1"; m.Endpoint != want {
		t.Errorf("manifest endpoint %q, want %q", m.Endpoint, want)
	}
	failures, _ := os.ReadFile(filepath.Join(dir, export.FailuresName))
	for _, want := range []string{"connection refused", "invalid credentials: Bearer [api key]"} {
		if !strings.Contains(string(failures), want) || !strings.Contains(out.String(), want) {
			t.Errorf("no row or no line of failures.jsonl says %q: the attack did not happen", want)
		}
	}
	if !strings.Contains(out.String(), "judge call failed") {
		t.Error("no judge failed: the attack on judges did not happen")
	}

	// Agent-R: the step judge and the fleet on the dead port.
	arDir := t.TempDir()
	arCfg := writeConfig(t, fmt.Sprintf(`name: agent-r-credentials
source: {kind: tasks, path: %s}
endpoint: {base_url: "http://policyuser-u1:POLICYPASS-p1@%s/v1?api-key=DEADQUERY-q1", model: policy, retries: 1, api_key_env: REDRAFT_CRED_KEY, breaker_failures: 1000}
sampling: {n: 1}
agent_r:
  step_judge: {base_url: "http://stepuser-u5:STEPPASS-p5@%s/v1?key=STEPQUERY-q5", model: judge, retries: 1, breaker_failures: 1000}
output: {dir: %s}
`, tasksPath, dead, dead, arDir))
	code, stdout, stderr = redraft(t, "run", "--config", arCfg, "--progress", "log")
	t.Logf("agent-r: exit %d after %s", code, time.Since(start))
	check("agent-r stdout", []byte(stdout))
	check("agent-r stderr", []byte(stderr))
	checkDir(arDir)
	if m, err := export.ReadManifest(arDir); err != nil || len(m.Skipped) == 0 || !strings.Contains(fmt.Sprint(m.Skipped), "connection refused") {
		t.Errorf("agent-r (exit %d): want skipped solutions with connection errors, got %v (%s)", code, err, stderr)
	}

	// redraft splice --endpoint with user info, refused with an echo.
	spDir := t.TempDir()
	code, stdout, stderr = redraft(t, "splice", "--format", "mr-gsm8k", "--input", mrInput, "--out", spDir,
		"--endpoint", "http://spliceuser-u6:SPLICEPASS-p6@"+live+"/v1", "--model", "m", "--api-key-env", "REDRAFT_CRED_KEY", "--continuation", "user-turn")
	t.Logf("splice: exit %d after %s", code, time.Since(start))
	check("splice stdout", []byte(stdout))
	check("splice stderr", []byte(stderr))
	checkDir(spDir)
	if _, err := export.ReadManifest(spDir); err != nil {
		t.Errorf("splice (exit %d) wrote no manifest: %v: %s", code, err, stderr)
	}

	// Configuration errors quote no credential, even of a URL that does not
	// parse or a value yaml could not decode.
	for _, y := range []string{
		"source: {kind: tasks, path: t.jsonl}\nendpoint: {base_url: \"http://erruser:ERRPASS-p7#x@h/v1\", model: m}\noutput: {dir: o}\n",
		"source: {kind: tasks, path: t.jsonl}\nendpoint: {base_url: http://h/v1, model: m, max_in_flight: \"http://u:YAMLPASS-p8@h/v1\"}\noutput: {dir: o}\n",
		"source: {kind: tasks, path: none.jsonl}\nendpoint: {base_url: http://h/v1, model: m, api_key_env: sk-HEADERKEY-h1}\noutput: {dir: o}\n",
	} {
		// A missing input fails the run right after the configuration.
		code, stdout, stderr := redraft(t, "run", "--config", writeConfig(t, y), "--out", t.TempDir())
		if code == 0 {
			t.Errorf("config accepted: %s", y)
		}
		check("config error", []byte(stdout+stderr))
	}
	// A key pasted as --api-key-env is refused before anything is written
	// (the input does not exist: the command would fail right after).
	keyDir := t.TempDir()
	code, _, stderr = redraft(t, "splice", "--format", "mr-gsm8k", "--input", filepath.Join(keyDir, "none.jsonl"), "--out", keyDir,
		"--endpoint", "http://127.0.0.1:1/v1", "--model", "m", "--api-key-env", key)
	if code != 2 {
		t.Errorf("--api-key-env with a key: exit %d", code)
	}
	check("splice usage error", []byte(stderr))
	checkDir(keyDir)
}
