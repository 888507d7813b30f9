package export

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/redraft/redraft/internal/redact"
)

// ManifestVersion is the version of the manifest's own layout.
const ManifestVersion = "redraft.manifest/1"

// Run statuses.
const (
	StatusComplete    = "complete"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted"
	// StatusRunning is the manifest a run writes at each checkpoint: the
	// shards listed are committed, and the run goes on (or was killed and
	// resumes when started again).
	StatusRunning = "running"
)

// Manifest records one run: what was asked, what code ran, what was written.
// It never holds an API key: the configuration names the environment variable
// a key is read from, never its value.
type Manifest struct {
	Manifest    string          `json:"manifest"`
	Status      string          `json:"status"`
	Error       string          `json:"error,omitempty"`
	Started     time.Time       `json:"started"`
	Finished    time.Time       `json:"finished"`
	CodeVersion string          `json:"code_version"`
	GoVersion   string          `json:"go_version"`
	Config      json.RawMessage `json:"config"`
	ConfigHash  string          `json:"config_hash"`
	// Source is "tasks" or "rollouts"; Model and Endpoint are empty for
	// recorded rollouts.
	Source   string                 `json:"source"`
	Model    string                 `json:"model,omitempty"`
	Endpoint string                 `json:"endpoint,omitempty"`
	Datasets map[string]DatasetInfo `json:"datasets"`
	Rewards  RewardSummary          `json:"rewards"`
	// Skipped lists input records that produced no output, with the reason.
	// It holds at most the first rollout.MaxSkippedRecords; SkippedTotal
	// counts them all.
	Skipped      []Skipped `json:"skipped,omitempty"`
	SkippedTotal int64     `json:"skipped_total,omitempty"`
	// Failures is the file listing every sample whose request failed for
	// good (each is also a row with its error); nil when none failed.
	Failures *FailuresInfo `json:"failures,omitempty"`
	// Shard is set on the manifest of one shard of a sharded run.
	Shard *ShardSpec `json:"shard,omitempty"`
	// Parts lists the shard runs a merged manifest combines (redraft
	// merge); their rows stay where they were written.
	Parts []PartInfo `json:"parts,omitempty"`
	// Retry is set when redraft run --retry-failed wrote the run.
	Retry *RetryInfo `json:"retry,omitempty"`
}

// RetryInfo says what a retry of a run's failed samples did: the run it
// replaced had FailedBefore failed samples; Replayed samples were taken
// from its rows as they were, Requested were asked for again.
type RetryInfo struct {
	FailedBefore int64 `json:"failed_before"`
	Replayed     int64 `json:"replayed"`
	Requested    int64 `json:"requested"`
}

// ShardSpec is one part of a sharded run: the tasks whose id hashes to Index
// modulo Count (rollout.ShardOf).
type ShardSpec struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// ShardDir is where shard i of n writes, relative to the run's directory.
func ShardDir(s ShardSpec) string {
	return fmt.Sprintf("shards/shard-%05d-of-%05d", s.Index, s.Count)
}

// SuccessName is the marker a shard run writes once it is complete.
const SuccessName = "_SUCCESS"

// PartInfo is one shard run of a merged run.
type PartInfo struct {
	Dir      string        `json:"dir"`
	Shard    ShardSpec     `json:"shard"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Rows     int64         `json:"rows"`
	Failures *FailuresInfo `json:"failures,omitempty"`
}

// FailuresInfo locates the failures record of a run.
type FailuresInfo struct {
	Path   string `json:"path"`
	Count  int64  `json:"count"`
	SHA256 string `json:"sha256"`
}

// Skipped is one input record that produced no output. Line is 0 when the
// whole file was skipped; Field names the offending field when there is one.
type Skipped struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// DatasetInfo lists one dataset's shards.
type DatasetInfo struct {
	Schema string      `json:"schema"`
	Rows   int64       `json:"rows"`
	Groups int64       `json:"groups"`
	Shards []ShardInfo `json:"shards"`
	// Filtered counts the candidates a recipe's filter left out, by reason
	// (sft from episodes: incomplete, truncated, ungraded, incorrect).
	Filtered map[string]int64 `json:"filtered,omitempty"`
}

// RewardSummary summarises the rewards written.
type RewardSummary struct {
	Rows int64 `json:"rows"`
	// Failed counts samples without a response (request failures).
	Failed int64 `json:"failed"`
	// NullRewards counts rows whose total reward is null.
	NullRewards int64    `json:"null_rewards"`
	Mean        *float64 `json:"mean"`
	Std         *float64 `json:"std"`
	// Accuracy is the fraction of graded rows judged correct.
	Accuracy *float64 `json:"accuracy"`
	Graded   int64    `json:"graded"`
	Groups   int64    `json:"groups"`
	// FracZeroStd is the fraction of groups whose rewards are all equal
	// (frac_reward_zero_std): they carry no learning signal.
	FracZeroStd *float64 `json:"frac_reward_zero_std"`
	// DroppedZeroStd counts zero-variance groups left out of the output by
	// advantage.drop_zero_variance.
	DroppedZeroStd int64            `json:"dropped_zero_std_groups"`
	FinishReason   map[string]int64 `json:"finish_reasons"`
}

// CodeVersion names the running build: the module version, plus the VCS
// revision when the binary was built with it.
func CodeVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += " (modified)"
			}
		}
	}
	return v
}

// ManifestName is the manifest's file name inside the output directory.
const ManifestName = "manifest.json"

// WriteManifest writes m to dir/manifest.json atomically, without the
// credentials its URLs or messages may carry (see Redacted).
func WriteManifest(dir string, m *Manifest) error {
	m.Manifest = ManifestVersion
	clean, err := m.Redacted()
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(clean, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding manifest: %w", err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, ManifestName), append(b, '\n')); err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	return nil
}

// Redacted returns a copy of m without credentials, as it may be published:
// URLs in the endpoint, the error and the skipped reasons lose their user
// info and query, and the configuration loses every credential it holds (see
// redact.JSON). Callers build manifests from configurations and errors that
// may quote a base URL such as http://user:pass@host/v1?api-key=...; this is
// the last point before they reach a file, so every writer goes through it.
func (m *Manifest) Redacted() (*Manifest, error) {
	c := *m
	if len(m.Config) > 0 {
		cfg, err := redact.JSON(m.Config)
		if err != nil {
			return nil, fmt.Errorf("manifest config: %w", err)
		}
		c.Config = cfg
	}
	c.Endpoint, c.Error = redact.Text(m.Endpoint), redact.Text(m.Error)
	if len(m.Skipped) > 0 {
		c.Skipped = make([]Skipped, len(m.Skipped))
		for i, s := range m.Skipped {
			s.Reason = redact.Text(s.Reason)
			c.Skipped[i] = s
		}
	}
	return &c, nil
}

// ReadManifest reads dir/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestName), err)
	}
	return &m, nil
}
