package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/redraft/redraft/audit"
	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/pipeline/agents"
	"github.com/redraft/redraft/pipeline/splice"
	"github.com/redraft/redraft/rollout"
)

func cmdRun(ctx context.Context, args []string, sigs <-chan os.Signal, stdout, stderr io.Writer) error {
	// The interrupt handler and the progress display write from goroutines
	// of their own while the run reports on this one.
	stderr = &lockedWriter{w: stderr}
	fs := newFlagSet("run", "--config FILE [flags]", runAbout, stdout)
	config := fs.String("config", "", "YAML configuration `file` (required)")
	out := fs.String("out", "", "output `directory` (overrides output.dir)")
	endpoint := addEndpointFlags(fs)
	overwrite := fs.Bool("overwrite", false, "replace a previous run in the output directory (start over instead of resuming)")
	shardSpec := fs.String("shard", "", "run one shard of the tasks: i/N, auto (a Slurm job array) or auto/N (index from Slurm or a Kubernetes Indexed Job); writes under DIR/shards/, combine with redraft merge")
	// 20s leaves 10s of Kubernetes' default 30s grace period between
	// SIGTERM and SIGKILL for the final commit and manifest.
	drain := fs.Duration("drain", 20*time.Second, "on Ctrl+C or SIGTERM, how long the tasks in flight may take to finish before they are abandoned (keep it 10s under the time a supervisor allows between SIGTERM and SIGKILL: Kubernetes' terminationGracePeriodSeconds, 30 by default)")
	workers := intNoDefault(fs, "workers", "scoring workers (overrides pipeline.workers; 0: one per core)")
	progress := fs.String("progress", "auto", "progress display: auto (a bar on a terminal, else log lines), bar, log or off")
	every := fs.Duration("progress-every", 10*time.Second, "how often the progress display is updated (a log line without a terminal)")
	noAudit := fs.Bool("no-audit", false, "do not print the audit summary after the run")
	retry := fs.Bool("retry-failed", false, "redo only the failed samples of the finished run in the output directory, replaying every answered one (single-turn generation runs)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to `file` (for go tool pprof)")
	memProfile := fs.String("memprofile", "", "write a heap profile to `file`, rewritten every 1024 groups so that it shows the live memory late in the run (for go tool pprof)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *config == "" {
		return usageError{"--config is required"}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := pipeline.LoadConfig(*config)
	if err != nil {
		return err
	}
	if *out != "" {
		cfg.Output.Dir = *out
	}
	if err := endpoint.apply(cfg); err != nil {
		return err
	}
	shard, err := parseShard(*shardSpec, os.Getenv)
	if err != nil {
		return usageError{err.Error()}
	}
	if shard.Count > 1 {
		cfg.Output.Dir = filepath.Join(cfg.Output.Dir, export.ShardDir(export.ShardSpec{Index: shard.Index, Count: shard.Count}))
	}
	if setFlags(fs)["workers"] {
		if *workers < 0 {
			return usageError{fmt.Sprintf("--workers %d: want 0 (one per core) or more", *workers)}
		}
		cfg.Pipeline.Workers = *workers
	}
	if *every <= 0 {
		return usageError{fmt.Sprintf("--progress-every %s: want a positive duration", *every)}
	}
	prog := &pipeline.Progress{}
	rep, err := newReporter(*progress, stderr, prog, *every)
	if err != nil {
		return usageError{err.Error()}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopper := rollout.NewStopper()
	go handleInterrupts(ctx, sigs, stopper, cancel, *drain, stderr)
	stopProfiles, err := startProfiles(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfiles()
	if *memProfile != "" {
		// Sample every 64 KiB allocated rather than 512: enough detail
		// to tell the pipeline's buffers apart, at a small cost.
		runtime.MemProfileRate = 64 << 10
		rep.heap = &heapProfiler{path: *memProfile, every: 1024}
	}
	execute, dataset := jobOf(cfg)
	if *retry {
		if *overwrite {
			return usageError{"--retry-failed keeps the answered samples; --overwrite discards them: give one"}
		}
		execute = pipeline.RetryFailed
	}
	m, err := execute(ctx, cfg, pipeline.JobOptions{
		Overwrite: *overwrite, OnGroup: rep.group, Stop: stopper, Shard: shard, Progress: prog,
		OnResume: func(ri pipeline.ResumeInfo) {
			fmt.Fprintf(stderr, "resuming %s (session %d): %d tasks (%d groups) already written, %d of them replayed from the journal\n",
				cfg.Output.Dir, ri.Session, ri.Tasks, ri.Groups, ri.Replayed)
		},
	})
	rep.done()
	if rep.heap != nil && rep.heap.err != nil {
		fmt.Fprintln(stderr, rep.heap.err)
	}
	if errors.Is(err, pipeline.ErrInterrupted) || errors.Is(err, context.Canceled) {
		if m != nil {
			fmt.Fprintf(stderr, "interrupted: %d rows in %d shard(s) committed to %s; resume with the same command: %s\n",
				m.Datasets[dataset].Rows, len(m.Datasets[dataset].Shards), cfg.Output.Dir, resumeCommand(args))
		}
		return err
	}
	if errors.Is(err, pipeline.ErrNothingToRetry) {
		fmt.Fprintf(stderr, "%s holds a complete run without a failed sample; nothing to retry\n", cfg.Output.Dir)
		return nil
	}
	if m != nil && m.Retry != nil {
		fmt.Fprintf(stderr, "retried the %d failed samples of %s: %d requested again, %d replayed from its rows\n",
			m.Retry.FailedBefore, cfg.Output.Dir, m.Retry.Requested, m.Retry.Replayed)
	}
	if errors.Is(err, pipeline.ErrAlreadyComplete) {
		fmt.Fprintf(stderr, "%s already holds a complete run of this configuration; nothing to do (pass --overwrite to redo it)\n", cfg.Output.Dir)
	} else if err != nil {
		if m != nil {
			fmt.Fprintf(stderr, "run %s: %d rows in %d finished shard(s) kept; manifest at %s\n",
				m.Status, m.Datasets[dataset].Rows, len(m.Datasets[dataset].Shards), cfg.Output.Dir+"/"+export.ManifestName)
		}
		return err
	} else {
		ds := m.Datasets[dataset]
		kind := ""
		if dataset != "rl" {
			kind = " " + dataset
		}
		fmt.Fprintf(stderr, "wrote %d%s rows (%d groups) in %d shard(s) to %s in %s\n",
			ds.Rows, kind, ds.Groups, len(ds.Shards), cfg.Output.Dir, m.Finished.Sub(m.Started).Round(time.Millisecond))
		if rl, ok := m.Datasets["rl"]; ok && dataset != "rl" {
			// Trajectories and environment runs write rl rows beside
			// their sft rows.
			fmt.Fprintf(stderr, "and %d rl rows (%d groups) in %d shard(s)\n", rl.Rows, rl.Groups, len(rl.Shards))
		}
		if m.SkippedTotal > 0 {
			fmt.Fprintf(stderr, "%d inputs produced no row; reasons in the manifest's skipped list\n", m.SkippedTotal)
		}
	}
	if *noAudit || dataset != "rl" && cfg.Source.Kind != "environment" {
		// The audit reads rl rewards; an sft run has none. An environment
		// run's rl rows are its episodes.
		return nil
	}
	a, err := audit.Dir(ctx, cfg.Output.Dir)
	if err != nil {
		return err
	}
	a.WriteText(stdout)
	return nil
}

// handleInterrupts turns the first signal into a graceful stop (no new task,
// the tasks in flight finish) and the second, or the drain timeout, into
// cancellation (the tasks in flight are abandoned; a resume redoes them).
func handleInterrupts(ctx context.Context, sigs <-chan os.Signal, stop *rollout.Stopper, cancel func(), drain time.Duration, stderr io.Writer) {
	if sigs == nil {
		return
	}
	select {
	case <-sigs:
	case <-ctx.Done():
		return
	}
	stop.Stop()
	fmt.Fprintf(stderr, "\nstopping: no new tasks; finishing the tasks in flight (up to %s; interrupt again to abandon them)\n", drain)
	t := time.NewTimer(drain)
	defer t.Stop()
	select {
	case <-sigs:
		fmt.Fprintln(stderr, "abandoning the tasks in flight")
	case <-t.C:
		fmt.Fprintf(stderr, "tasks in flight did not finish within %s; abandoning them\n", drain)
	case <-ctx.Done():
		return
	}
	cancel()
}

// resumeCommand is the command line that resumes a run.
func resumeCommand(args []string) string {
	var b strings.Builder
	b.WriteString("redraft run")
	for _, a := range args {
		if a == "--overwrite" || a == "-overwrite" {
			continue
		}
		b.WriteString(" ")
		if strings.ContainsAny(a, " \t'\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		b.WriteString(a)
	}
	return b.String()
}

// jobOf is the job that runs cfg, and the dataset it writes: generation or
// grading (pipeline.Execute, rl), recorded trajectories (pipeline.Execute,
// sft), splicing (splice.Execute, sft) or Agent-R (splice.ExecuteAgentR,
// sft). Every one opens its output directory with pipeline.Open and takes
// the same options.
func jobOf(cfg *pipeline.Config) (func(context.Context, *pipeline.Config, pipeline.JobOptions) (*export.Manifest, error), string) {
	switch {
	case cfg.Splice != nil:
		return splice.Execute, "sft"
	case cfg.AgentR != nil:
		return splice.ExecuteAgentR, "sft"
	case cfg.Source.Kind == "environment":
		// Agent episodes in an interactive environment: rl rows of the
		// episodes, sft rows of the recipe.
		return agents.Execute, "sft"
	case cfg.Source.Kind == "trajectories":
		// Recorded agent trajectories: an sft row each, and rl rows for
		// those with a reward.
		return pipeline.Execute, "sft"
	}
	return pipeline.Execute, "rl"
}

// lockedWriter serialises writes to w from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
