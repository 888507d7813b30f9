package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// allowFailures lifts the failure bound for a test whose point is the
// failures it injects (how they are recorded), not the bound.
func allowFailures(c *Config) {
	one := 1.0
	c.Pipeline.MaxFailureRate = &one
}

// TestFailureBound: a run where more samples fail than
// pipeline.max_failure_rate allows ends failed with the commonest reasons,
// its rows kept; at the default a dead endpoint stops the run after 200
// samples instead of writing a dataset of errors (issue 16 item 1).
func TestFailureBound(t *testing.T) {
	tasks, answers := writeTasks(t, 150)
	inner := fakeserver.AnswerBySeed(answers)
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		if *req.Seed%5 == 0 {
			return fakeserver.Reply{Status: 400, Message: "prompt too long"}
		}
		return inner(req)
	})
	defer srv.Close()
	for _, tt := range []struct {
		name  string
		bound *float64
		want  string
	}{
		{"default", nil, "over pipeline.max_failure_rate 0.1 (stopped early); commonest: "},
		{"raised", ptr(0.5), ""},
		{"zero", ptr(0.0), "(stopped early)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := generationConfig(t, srv, tasks)
			cfg.Pipeline.MaxFailureRate = tt.bound
			m, err := Execute(context.Background(), cfg, JobOptions{})
			if tt.want == "" {
				if err != nil || m.Status != export.StatusComplete {
					t.Fatalf("a failure rate under the bound: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrTooManyFailures) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "HTTP 400: prompt too long from http://127.0.0.1:") {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if m.Status != export.StatusFailed || !strings.Contains(m.Error, "--retry-failed") || m.Datasets["rl"].Rows == 0 {
				t.Fatalf("manifest: status %s, %d rows, error %q", m.Status, m.Datasets["rl"].Rows, m.Error)
			}
			// The early stop commits the rows written so far (at a task
			// boundary) and no more than a window beyond the 200th sample.
			if rows := m.Datasets["rl"].Rows; rows < failureMinSamples || rows >= 600 {
				t.Errorf("%d rows committed", rows)
			}
		})
	}
	// At the end: fewer samples than the early check needs.
	few, fewAnswers := writeTasks(t, 10)
	inner2 := fakeserver.AnswerBySeed(fewAnswers)
	srv2 := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		if *req.Seed%2 == 0 {
			return fakeserver.Reply{Status: 400, Message: "bad request"}
		}
		return inner2(req)
	})
	defer srv2.Close()
	cfg := generationConfig(t, srv2, few)
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if !errors.Is(err, ErrTooManyFailures) || !strings.Contains(err.Error(), "(at the end)") || m.Status != export.StatusFailed {
		t.Fatalf("at the end: %v (%s)", err, m.Status)
	}
}

func ptr[T any](v T) *T { return &v }

// The failure bound's advice fits the run: a single-turn run is told to
// rerun with --retry-failed; an episode run, which --retry-failed refuses,
// to rerun with --overwrite, and why.
func TestFailureBoundAdvice(t *testing.T) {
	tasks, _ := writeTasks(t, 4)
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply {
		return fakeserver.Reply{Status: 400, Message: "prompt too long"}
	})
	defer srv.Close()
	for _, tc := range []struct{ extra, want, not string }{
		{"", "rerun with --retry-failed", "--overwrite"},
		{"episode: {turns: 2, feedback: fixed}\n", "rerun with --overwrite", "rerun with --retry-failed"},
	} {
		cfg := episodeConfig(t, srv, tasks, tc.extra)
		_, err := Execute(context.Background(), cfg, JobOptions{})
		if !errors.Is(err, ErrTooManyFailures) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), tc.not) {
			t.Errorf("%q: %v", tc.extra, err)
		}
	}
}
