package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rewards"
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
		m.Model, m.Endpoint = cfg.Endpoint.Model, cfg.Endpoint.BaseURL
	}

	prod, closeSrc, err := buildProducer(cfg)
	if err != nil {
		return nil, err
	}
	defer closeSrc()
	grader := rewards.NumericGrader{}
	scorer := &rewards.Composite{Grader: grader, Parts: cfg.Reward.Parts(grader), Weights: cfg.Reward.Weights}
	sink, err := export.NewShardWriter[export.RLRow](export.ShardOptions{
		Dir: dir, Dataset: "rl", Split: "train", Schema: export.RLSchema,
		MaxBytes: int64(cfg.Output.ShardBytes), RowGroupRows: cfg.Output.RowGroupRows,
		Metadata: map[string]string{"redraft.config_hash": hash},
	})
	if err != nil {
		return nil, err
	}
	summary, runErr := Run(ctx, prod, scorer, sink, Options{
		Workers: cfg.Pipeline.Workers, Window: cfg.Pipeline.Window,
		Advantage: cfg.Advantage, OnGroup: opts.OnGroup,
	})
	var shards []export.ShardInfo
	if runErr != nil {
		shards = sink.Abort()
	} else if shards, runErr = sink.Close(); runErr != nil {
		shards = sink.Abort()
	}
	ds := export.DatasetInfo{Schema: export.RLSchema, Shards: shards}
	if shards == nil {
		ds.Shards = []export.ShardInfo{}
	}
	for _, s := range shards {
		ds.Rows += s.Rows
		ds.Groups += s.Groups
	}
	m.Datasets = map[string]export.DatasetInfo{"rl": ds}
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
	return m, runErr
}

// prepareOutput refuses to mix two runs in one directory.
func prepareOutput(dir, hash string, overwrite bool) error {
	if overwrite {
		for _, p := range []string{filepath.Join(dir, "data"), filepath.Join(dir, export.ManifestName)} {
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

func buildProducer(cfg *Config) (rollout.Producer, func(), error) {
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
	policy := rollout.NewOpenAIPolicy(rollout.EndpointConfig{
		BaseURL: ep.BaseURL, Model: ep.Model, APIKey: os.Getenv(ep.APIKeyEnv),
		Timeout: time.Duration(ep.Timeout), MaxConns: ep.MaxInFlight,
	})
	gen := &rollout.Generator{
		Tasks: tasks, Policy: policy, Samples: cfg.Sampling.N, Sampling: cfg.Sampling.Sampling,
		RunSeed: cfg.Seed, MaxInFlight: ep.MaxInFlight, Model: ep.Model,
	}
	return gen, func() { tasks.Close() }, nil
}
