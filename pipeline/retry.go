package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout"
)

// ErrNothingToRetry is returned by RetryFailed for a complete run without a
// failed sample.
var ErrNothingToRetry = errors.New("no failed sample to retry")

// RetryFailed redoes the failed samples of the generation run in cfg's
// output directory, and nothing else: the run is generated again in a
// staging directory beside it (<dir>.retry), every sample the earlier run
// answered is replayed from its rows (response, usage, endpoint, attempts,
// latency) and only the others are requested, with the same seeds. So the
// result is the run an uninterrupted session against a healthy server
// would have written, advantages included; the earlier run's tasks that it
// never reached (a run the failure bound stopped early) are generated too.
// When the staging run has gone through every task it replaces the
// directory (two renames; a crash between them is finished by the next
// call), even if its failures are still over pipeline.max_failure_rate
// (then it returns that error, and another retry redoes what failed again).
// A staging run that is killed resumes like any run when RetryFailed is
// called again.
//
// It takes single-turn generation runs: episodes, critiques and
// self-verification make later requests depend on earlier answers, and
// advantage.drop_zero_variance leaves no rows to replay for the groups it
// dropped.
func RetryFailed(ctx context.Context, cfg *Config, opts JobOptions) (*export.Manifest, error) {
	if err := retryable(cfg); err != nil {
		return nil, err
	}
	dir := filepath.Clean(cfg.Output.Dir)
	staging, replaced := dir+".retry", dir+".replaced"
	if err := finishSwap(dir, staging, replaced); err != nil {
		return nil, err
	}
	if err := export.CheckOwnership(dir); err != nil {
		return nil, err
	}
	old, err := export.ReadManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("--retry-failed: %w", err)
	}
	_, hash, err := cfg.Identity()
	if err != nil {
		return nil, err
	}
	switch {
	case old.ConfigHash != hash:
		return nil, fmt.Errorf("--retry-failed: %s holds a run of another configuration (config %.12s); retry it with the configuration that made it", dir, old.ConfigHash)
	case old.Status != export.StatusComplete && old.Status != export.StatusFailed:
		return nil, fmt.Errorf("--retry-failed: the run in %s is %s: resume it first with the same command without --retry-failed", dir, old.Status)
	case old.Status == export.StatusComplete && old.Rewards.Failed == 0:
		return nil, ErrNothingToRetry
	}

	scanCtx, stopScan := context.WithCancel(ctx)
	defer stopScan()
	cache := openReplay(scanCtx, dir, old.Datasets["rl"].Shards)
	defer cache.close()
	scfg := *cfg
	scfg.Output.Dir = staging
	opts.retry = cache
	m, runErr := Execute(ctx, &scfg, opts)
	if m == nil {
		return nil, runErr
	}
	if m.Status != export.StatusComplete && !errors.Is(runErr, ErrTooManyFailures) {
		// Interrupted or failed otherwise: the staging run resumes when
		// --retry-failed runs again.
		return m, runErr
	}
	if err := cache.err(); err != nil {
		return m, errors.Join(runErr, fmt.Errorf("reading %s: %w", dir, err))
	}
	// The manifest says where the rows are and what the retry did.
	full, err := json.Marshal(cfg)
	if err != nil {
		return m, err
	}
	m.Config = full
	m.Retry = &export.RetryInfo{FailedBefore: old.Rewards.Failed, Replayed: cache.hits.Load(), Requested: cache.misses.Load()}
	if err := export.WriteManifest(staging, m); err != nil {
		return m, errors.Join(runErr, err)
	}
	if err := export.WriteCard(staging, m); err != nil {
		return m, errors.Join(runErr, err)
	}
	if err := swap(dir, staging, replaced); err != nil {
		return m, errors.Join(runErr, err)
	}
	return m, runErr
}

// swap puts the staging run in dir's place and removes the old run.
func swap(dir, staging, replaced string) error {
	if err := os.Rename(dir, replaced); err != nil {
		return fmt.Errorf("replacing %s: %w", dir, err)
	}
	if err := os.Rename(staging, dir); err != nil {
		return fmt.Errorf("replacing %s: %w (the earlier run is in %s)", dir, err, replaced)
	}
	return removeRun(replaced)
}

// finishSwap completes a swap a crash interrupted: dir missing, the old run
// in replaced and the new one in staging.
func finishSwap(dir, staging, replaced string) error {
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(replaced); err == nil {
			return removeRun(replaced)
		}
		return nil
	}
	if _, err := os.Stat(replaced); err != nil {
		return nil // nothing was swapped: the manifest check reports dir
	}
	if err := os.Rename(staging, dir); err != nil {
		return fmt.Errorf("finishing the replacement of %s: %w (the earlier run is in %s)", dir, err, replaced)
	}
	return removeRun(replaced)
}

// removeRun deletes what redraft wrote in dir, journal included, then the
// directories left empty; anything else stays.
func removeRun(dir string) error {
	if err := export.RemoveOutput(dir, journalDir); err != nil {
		return err
	}
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // children first
	for _, d := range dirs {
		os.Remove(d) // fails, harmlessly, when not empty
	}
	return nil
}

// replay serves the answered samples of an earlier run's rl rows, in the
// order they were written, to a Generator (rollout.Generator.Replay). A
// goroutine reads the shards a batch at a time; lookups pull rows until the
// task asked for is passed, keeping those of tasks not asked for yet. The
// generator asks in input order, up to its window ahead, so what is kept is
// bounded by the window.
type replay struct {
	rows    chan export.RLRow
	done    chan struct{}
	mu      sync.Mutex
	pending map[replayKey]export.RLRow
	// seen holds the most recent tasks whose rows have all been read
	// (at most replaySeenMax, oldest first in seenOrder): lookups come
	// within the generator's window of the task being read, so older ones
	// are never asked about and the state stays bounded on long runs.
	seen      map[string]bool
	seenOrder []string
	current   string // the task of the last row read
	ended     bool
	scanErr   error
	// hits and misses count the samples replayed and requested again.
	hits, misses atomic.Int64
	closeOne     sync.Once
}

// replaySeenMax bounds replay.seen: far more tasks than a window holds.
const replaySeenMax = 1 << 16

type replayKey struct {
	task  string
	index int
}

func openReplay(ctx context.Context, dir string, shards []export.ShardInfo) *replay {
	r := &replay{rows: make(chan export.RLRow, 256), done: make(chan struct{}), pending: map[replayKey]export.RLRow{}, seen: map[string]bool{}}
	go func() {
		defer close(r.done)
		defer close(r.rows)
		for _, s := range shards {
			err := export.ScanRows(ctx, filepath.Join(dir, filepath.FromSlash(s.Path)), func(row export.RLRow) error {
				select {
				case r.rows <- row:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					r.mu.Lock()
					r.scanErr = err
					r.mu.Unlock()
				}
				return
			}
		}
	}()
	return r
}

// lookup is the Generator's Replay: the earlier run's answer for sample
// index of task, if it had one with this seed.
func (r *replay) lookup(task string, index int, seed int64) (rollout.Sample, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := replayKey{task, index}
	for {
		if row, ok := r.pending[key]; ok {
			delete(r.pending, key)
			if row.Error != nil || row.Turn != 0 || row.Seed == nil || *row.Seed != seed {
				r.misses.Add(1)
				return rollout.Sample{}, false
			}
			r.hits.Add(1)
			return sampleOf(row), true
		}
		if r.ended || r.seen[task] {
			r.misses.Add(1)
			return rollout.Sample{}, false
		}
		// Read on; the lock is held so that rows are taken in order.
		row, ok := <-r.rows
		if !ok {
			r.ended = true
			continue
		}
		if row.TaskID != r.current {
			if r.current != "" {
				r.seen[r.current] = true
				r.seenOrder = append(r.seenOrder, r.current)
				if len(r.seenOrder) > replaySeenMax {
					delete(r.seen, r.seenOrder[0])
					r.seenOrder = r.seenOrder[1:]
				}
			}
			r.current = row.TaskID
		}
		r.pending[replayKey{row.TaskID, int(row.SampleIndex)}] = row
	}
}

// sampleOf is the answered sample a row records.
func sampleOf(row export.RLRow) rollout.Sample {
	s := rollout.Sample{Index: int(row.SampleIndex), Model: row.Model, Text: row.Response}
	if row.Reasoning != nil {
		s.Reasoning = *row.Reasoning
	}
	if row.FinishReason != nil {
		s.FinishReason = *row.FinishReason
	}
	if row.PromptTokens != nil && row.CompletionTokens != nil {
		s.Usage = &rollout.Usage{PromptTokens: int(*row.PromptTokens), CompletionTokens: int(*row.CompletionTokens)}
	}
	if row.Endpoint != nil {
		s.Endpoint = *row.Endpoint
	}
	if row.Attempts != nil {
		s.Attempts = int(*row.Attempts)
	}
	if row.LatencyMS != nil {
		s.Latency = time.Duration(math.Round(*row.LatencyMS*1000)) * time.Microsecond
	}
	for _, lp := range row.Logprobs {
		s.Logprobs = append(s.Logprobs, rollout.TokenLogprob{Token: lp.Token, Logprob: lp.Logprob})
	}
	if row.TokenSource != nil && *row.TokenSource == export.TokenSourceEngine {
		// The engine's ids travel with the answer they belong to.
		s.PromptIDs, s.ResponseIDs = row.PromptIDs, row.ResponseIDs
	}
	if n := len(row.Messages); n > 0 {
		// The response's tool calls, on the last message (rl/4).
		for _, tc := range row.Messages[n-1].ToolCalls {
			s.ToolCalls = append(s.ToolCalls, rollout.ToolCall{ID: tc.ID, Type: tc.Type, Function: rollout.ToolFunction{Name: tc.Function.Name, Arguments: tc.Function.Arguments}})
		}
	}
	return s
}

// err is the error that stopped reading the earlier run's shards, if any.
func (r *replay) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.scanErr
}

// close stops the reading goroutine (its context is cancelled by the
// caller) and waits for it.
func (r *replay) close() {
	r.closeOne.Do(func() {
		go func() {
			for range r.rows {
			}
		}()
		<-r.done
	})
}

// retryable says why --retry-failed cannot redo the failed samples of a
// run of cfg (nil when it can).
func retryable(cfg *Config) error {
	switch {
	case cfg.Splice != nil || cfg.AgentR != nil:
		return errors.New("--retry-failed redoes the failed samples of a generation run; a splice or Agent-R job resumes with the same command instead")
	case cfg.Source.Kind != "tasks":
		return errors.New("--retry-failed: source.kind is not tasks: a run over recorded rollouts sends no request that could fail")
	case cfg.Episode.Turns > 1 || cfg.Critique != nil || cfg.SelfVerify != nil:
		return errors.New("--retry-failed redoes single-turn generation runs: in episodes, critiques and self-verification later requests depend on earlier answers (rerun with --overwrite)")
	case cfg.Advantage.DropZeroVariance:
		return errors.New("--retry-failed cannot replay the groups advantage.drop_zero_variance left out of the output (rerun with --overwrite)")
	}
	return nil
}
