package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/judge"
	"github.com/redraft/redraft/rewards/mathgrade"
	"github.com/redraft/redraft/rollout"
)

// JobOptions are the per-invocation settings of Execute that are not part of
// a run's identity.
type JobOptions struct {
	// Overwrite removes a previous run's shards and manifest first.
	Overwrite bool
	// OnGroup is called after each group is written.
	OnGroup func(written int64, rows int)
}

// ErrAlreadyComplete is returned when the output directory already holds a
// complete run of the same configuration.
var ErrAlreadyComplete = errors.New("output already holds a complete run of this configuration")

// Execute runs cfg end to end: read, generate or replay, score, write shards
// and the manifest. The manifest is written whatever happens, with status
// complete, failed or interrupted and the shards that were finished; a shard
// being written when an error occurs is removed.
func Execute(ctx context.Context, cfg *Config, opts JobOptions) (*export.Manifest, error) {
	if cfg.AgentR != nil {
		// Agent-R writes sft trajectories; its job lives in pipeline/splice,
		// which imports this package.
		return nil, errors.New("config has an agent_r section: run it with splice.ExecuteAgentR (redraft run does)")
	}
	full, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	_, hash, err := cfg.Identity()
	if err != nil {
		return nil, fmt.Errorf("hashing config: %w", err)
	}
	dir := cfg.Output.Dir
	if err := prepareOutput(dir, hash, opts.Overwrite); err != nil {
		return nil, err
	}
	m := &export.Manifest{
		Started: time.Now().UTC(), CodeVersion: export.CodeVersion(), GoVersion: runtime.Version(),
		Config: full, ConfigHash: hash, Source: cfg.Source.Kind,
	}
	if cfg.Endpoint != nil && cfg.Source.Kind == "tasks" {
		m.Model, m.Endpoint = cfg.Endpoint.Model, strings.Join(cfg.Endpoint.URLs(), ",")
	}

	grader := defaultGrader()
	prod, closeSrc, err := buildProducer(cfg, grader)
	if err != nil {
		return nil, err
	}
	defer closeSrc()
	parts := cfg.Reward.Parts(grader)
	if _, ok := cfg.Reward.Weights["judge"]; ok {
		part, closeJudges, err := buildJudges(cfg.Reward)
		if err != nil {
			return nil, err
		}
		defer closeJudges()
		parts = append(parts, part)
	}
	scorer := &rewards.Composite{Grader: grader, Parts: parts, Weights: cfg.Reward.Weights}
	shardOpts := func(dataset, schema string) export.ShardOptions {
		return export.ShardOptions{
			Dir: dir, Dataset: dataset, Split: "train", Schema: schema,
			MaxBytes: int64(cfg.Output.ShardBytes), RowGroupRows: cfg.Output.RowGroupRows,
			Metadata: map[string]string{"redraft.config_hash": hash},
		}
	}
	rl, err := export.NewShardWriter[export.RLRow](shardOpts("rl", export.RLSchema))
	if err != nil {
		return nil, err
	}
	sink := &jobSink{rl: rl, failures: export.NewFailureLog(dir)}
	if cfg.Episode.Pairs {
		if sink.pairs, err = export.NewShardWriter[export.PairRow](shardOpts("pairs", export.PairsSchema)); err != nil {
			return nil, err
		}
	}
	if sink.verl, err = export.NewVerlPrompts(shardOpts(export.VerlDataset, export.VerlSchema), cfg.Reward.Grader); err != nil {
		return nil, err
	}
	summary, runErr := Run(ctx, prod, scorer, sink, Options{
		Workers: cfg.Pipeline.Workers, Window: cfg.Pipeline.Window,
		Advantage: cfg.Advantage, TurnsPerTask: cfg.Episode.Turns, OnGroup: opts.OnGroup,
	})
	m.Datasets = map[string]export.DatasetInfo{}
	var closeErr error
	m.Datasets["rl"], closeErr = finishShards(rl, export.RLSchema, runErr)
	runErr = errors.Join(runErr, closeErr)
	if sink.pairs != nil {
		m.Datasets["pairs"], closeErr = finishShards(sink.pairs, export.PairsSchema, runErr)
		runErr = errors.Join(runErr, closeErr)
	}
	m.Datasets[export.VerlDataset], closeErr = finishShards(sink.verl.Writer(), export.VerlSchema, runErr)
	runErr = errors.Join(runErr, closeErr)
	// The failures record is kept also when the run fails: it lists the
	// failed samples of the groups that were written.
	m.Failures, closeErr = sink.failures.Close()
	runErr = errors.Join(runErr, closeErr)
	m.Rewards = summary
	m.Finished = time.Now().UTC()
	switch {
	case runErr == nil:
		m.Status = export.StatusComplete
	case errors.Is(runErr, context.Canceled):
		m.Status, m.Error = export.StatusInterrupted, runErr.Error()
	default:
		m.Status, m.Error = export.StatusFailed, runErr.Error()
	}
	if err := export.WriteManifest(dir, m); err != nil {
		return m, errors.Join(runErr, err)
	}
	if err := export.WriteCard(dir, m); err != nil {
		return m, errors.Join(runErr, err)
	}
	return m, runErr
}

// defaultGrader is the grader runs use.
func defaultGrader() rewards.Grader { return rewards.NewMathGrader(mathgrade.Options{}) }

// jobSink writes rl rows, and the preference pairs derived from them when
// asked.
type jobSink struct {
	rl    *export.ShardWriter[export.RLRow]
	pairs *export.ShardWriter[export.PairRow]
	// verl receives each task's prompt once, as verl's prompt set.
	verl *export.VerlPrompts
	// failures lists the samples whose request failed for good.
	failures *export.FailureLog
}

func (s *jobSink) WriteGroup(ctx context.Context, rows []export.RLRow) error {
	if err := s.rl.WriteGroup(ctx, rows); err != nil {
		return err
	}
	if err := s.failures.Add(rows); err != nil {
		return err
	}
	if s.verl != nil {
		if err := s.verl.WriteRLGroup(ctx, rows); err != nil {
			return err
		}
	}
	if s.pairs != nil {
		if p := Pairs(rows); len(p) > 0 {
			return s.pairs.WriteGroup(ctx, p)
		}
	}
	return nil
}

// finishShards closes a writer (or aborts it when the run failed) and
// describes what it wrote.
func finishShards[T any](w *export.ShardWriter[T], schema string, runErr error) (export.DatasetInfo, error) {
	var shards []export.ShardInfo
	var err error
	if runErr != nil {
		shards = w.Abort()
	} else if shards, err = w.Close(); err != nil {
		shards = w.Abort()
	}
	ds := export.DatasetInfo{Schema: schema, Shards: shards}
	if shards == nil {
		ds.Shards = []export.ShardInfo{}
	}
	for _, s := range shards {
		ds.Rows += s.Rows
		ds.Groups += s.Groups
	}
	return ds, err
}

// buildJudges assembles the judge panel, with its cache when configured.
func buildJudges(rc RewardConfig) (rewards.Part, func(), error) {
	var cache *judge.Cache
	if rc.JudgeCache != "" {
		var err error
		if cache, err = judge.OpenCache(rc.JudgeCache); err != nil {
			return nil, nil, fmt.Errorf("reward.judge_cache: %w", err)
		}
	}
	panel := &judge.Panel{Method: rc.JudgeAggregate}
	for _, jc := range rc.Judges {
		tmpl, err := judge.BuiltinTemplate(jc.Template)
		if err != nil {
			return nil, nil, err
		}
		name := jc.Name
		if name == "" {
			name = jc.Model
		}
		panel.Judges = append(panel.Judges, &judge.Judge{
			Name: name, Model: jc.Model, Template: tmpl, Cache: cache,
			Policy: jc.Policy(),
		})
	}
	closeFn := func() {
		if cache != nil {
			cache.Close()
		}
	}
	return judge.Part{Panel: panel}, closeFn, nil
}

// verifier adapts a grader to the episode generator's feedback decisions.
type verifier struct{ g rewards.Grader }

func (v verifier) Verify(task rollout.Task, response string) *bool {
	if task.Reference == "" {
		return nil
	}
	ok := v.g.Grade(response, task.Reference).Correct
	return &ok
}

// prepareOutput refuses to mix two runs in one directory.
func prepareOutput(dir, hash string, overwrite bool) error {
	if overwrite {
		for _, p := range []string{filepath.Join(dir, "data"), filepath.Join(dir, export.ManifestName), filepath.Join(dir, export.FailuresName)} {
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("overwrite: %w", err)
			}
		}
	}
	prev, err := export.ReadManifest(dir)
	switch {
	case err == nil && prev.Status == export.StatusComplete && prev.ConfigHash == hash:
		return ErrAlreadyComplete
	case err == nil:
		return fmt.Errorf("output directory %s holds another run (status %s, config %.12s); pass --overwrite to replace it", dir, prev.Status, prev.ConfigHash)
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "data")); len(entries) > 0 {
		return fmt.Errorf("output directory %s already has shards but no manifest; pass --overwrite to replace them", dir)
	}
	return os.MkdirAll(dir, 0o755)
}

func buildProducer(cfg *Config, grader rewards.Grader) (rollout.Producer, func(), error) {
	in := rollout.InputOptions{
		Path: cfg.Source.Path, Format: cfg.Source.Format, Layout: cfg.Source.Layout,
		Fields: cfg.Source.Fields, DataSource: cfg.Source.DataSource,
		SystemPrompt: cfg.Source.SystemPrompt, GenerateIDs: cfg.Source.GenerateIDs,
		MaxLineBytes: cfg.Source.MaxLineBytes,
	}
	if cfg.Source.Kind == "rollouts" {
		src, err := rollout.OpenRecorded(in)
		if err != nil {
			return nil, nil, err
		}
		return src, func() { src.Close() }, nil
	}
	tasks, err := rollout.OpenTasks(in)
	if err != nil {
		return nil, nil, err
	}
	ep := cfg.Endpoint
	policy, err := rollout.NewEndpoints(rollout.EndpointsConfig{
		URLs: ep.URLs(), Model: ep.Model, APIKey: os.Getenv(ep.APIKeyEnv),
		Timeout: time.Duration(ep.Timeout), MaxInFlight: ep.MaxInFlightPerEndpoint,
		MaxAttempts: ep.Retries, BackoffInitial: time.Duration(ep.BackoffInitial), BackoffMax: time.Duration(ep.BackoffMax),
		BreakerFailures: ep.BreakerFailures, BreakerCooldown: time.Duration(ep.BreakerCooldown),
	})
	if err != nil {
		tasks.Close()
		return nil, nil, err
	}
	// The policy owns the HTTP connections; closing releases them.
	closeAll := func() { tasks.Close(); policy.Close() }
	if cr := cfg.Critique; cr != nil {
		gen := &rollout.CritiqueGenerator{
			Tasks: tasks, Policy: policy, Samples: cfg.Sampling.N, Sampling: cfg.Sampling.Sampling,
			RunSeed: cfg.Seed, MaxInFlight: cfg.Endpoint.MaxInFlight, Model: cfg.Endpoint.Model,
			Mode: cr.Mode, Verifier: verifier{grader},
		}
		if c := cr.Critic; c != nil {
			gen.Critic, gen.CriticModel = c.Policy(), c.Model
		}
		return gen, closeAll, nil
	}
	if episode := cfg.Episode; episode.Turns > 1 {
		var fb rollout.Feedback = rollout.FixedInstruction{Text: episode.Instruction}
		if episode.Feedback == "retry_if_wrong" {
			fb = rollout.RetryIfWrong{Text: episode.Instruction}
		}
		return &rollout.EpisodeGenerator{
			Tasks: tasks, Policy: policy, Samples: cfg.Sampling.N, Turns: episode.Turns, Sampling: cfg.Sampling.Sampling,
			RunSeed: cfg.Seed, MaxInFlight: cfg.Endpoint.MaxInFlight, Model: cfg.Endpoint.Model,
			Feedback: fb, Verifier: verifier{grader},
		}, closeAll, nil
	}
	gen := &rollout.Generator{
		Tasks: tasks, Policy: policy, Samples: cfg.Sampling.N, Sampling: cfg.Sampling.Sampling,
		RunSeed: cfg.Seed, MaxInFlight: ep.MaxInFlight, Model: ep.Model,
	}
	return gen, closeAll, nil
}
