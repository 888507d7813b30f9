package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/redraft/redraft/export"
)

// Harness is one job's output directory, opened by Open: a new run, a run
// resumed after a kill or an interruption, or a previous run replaced
// (JobOptions.Overwrite). Every job kind (generation in Execute, splicing
// and Agent-R in pipeline/splice) goes through it, so they claim, resume
// and finish a directory alike:
//
//   - only redraft's own files are written or deleted (export.CheckOwnership);
//   - a complete run of the same configuration is left alone
//     (ErrAlreadyComplete), another configuration's run is refused with
//     what changed, and an unfinished run of the same one is resumed from
//     its journal (see journal.go);
//   - the manifest records the run's identity (config and its hash, code
//     version, shard), the dataset card is written beside it, the journal
//     of a complete run is removed and a shard run's _SUCCESS marker is
//     written last.
//
// A Harness is used by the job's writing goroutine only.
type Harness struct {
	// Dir is the output directory (a shard run's own directory).
	Dir string
	// Manifest is the run's manifest; Open fills its identity, the job its
	// datasets, rewards and skips before Finish.
	Manifest *export.Manifest
	// Hash is the configuration's identity hash.
	Hash string

	cfg     *Config
	journal *journal
	// prev is the journal of the run being resumed, nil for a new run.
	prev *journalMeta
	comp *export.Compressor
	// created is set when Open created the directory.
	created bool
}

// Open opens cfg's output directory for a job whose rows come from source
// (recorded in the manifest, e.g. "tasks" or "splice:prm800k"). It is the one
// place where a job's directory is created, resumed or replaced.
func Open(cfg *Config, source string, opts JobOptions) (*Harness, error) {
	full, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	identity, hash, err := cfg.Identity()
	if err != nil {
		return nil, fmt.Errorf("hashing config: %w", err)
	}
	dir := cfg.Output.Dir
	_, statErr := os.Stat(dir)
	j, prev, err := openRun(dir, identity, hash, time.Now().UTC(), opts.Overwrite, opts.Shard)
	if err != nil {
		return nil, err
	}
	comp, err := export.NewCompressor()
	if err != nil {
		j.close()
		return nil, err
	}
	m := &export.Manifest{
		Started: j.meta.Started, CodeVersion: export.CodeVersion(), GoVersion: runtime.Version(),
		Config: full, ConfigHash: hash, Source: source,
	}
	if opts.Shard.Count > 1 {
		m.Shard = &export.ShardSpec{Index: opts.Shard.Index, Count: opts.Shard.Count}
	}
	return &Harness{Dir: dir, Manifest: m, Hash: hash, cfg: cfg, journal: j, prev: prev, comp: comp,
		created: errors.Is(statErr, os.ErrNotExist)}, nil
}

// abandon undoes Open for a new run that fails before it has written
// anything (a source file that does not exist, an endpoint that cannot be
// set up): the journal goes, and the directory when Open created it, so that
// a corrected rerun starts afresh instead of being refused as another
// configuration's unfinished run. A resumed run is left as it was. It
// returns err, joined with a failure to clean up.
func (h *Harness) abandon(err error) error {
	if h.prev != nil {
		return err
	}
	h.journal.remove()
	if rerr := export.RemoveOutput(h.Dir); rerr != nil {
		return errors.Join(err, rerr)
	}
	if h.created {
		// Only empty directories go: anything else is not ours.
		os.Remove(filepath.Join(h.Dir, "data"))
		os.Remove(h.Dir)
	}
	return err
}

// Resumed reports whether the run resumes an unfinished one.
func (h *Harness) Resumed() bool { return h.prev != nil }

// ShardOptions are the settings of a dataset's shard writer: the output
// section's sizes, the config hash in every shard's metadata, numbering
// after the shards already committed, and rotation left to the job, which
// rotates at its checkpoints.
func (h *Harness) ShardOptions(dataset, schema string) export.ShardOptions {
	o := h.cfg.Output
	return export.ShardOptions{
		Dir: h.Dir, Dataset: dataset, Split: "train", Schema: schema,
		MaxBytes: int64(o.ShardBytes), MaxRows: o.ShardRows, RowGroupRows: o.RowGroupRows,
		Metadata:       map[string]string{"redraft.config_hash": h.Hash},
		FirstIndex:     len(h.journal.meta.Shards[dataset]),
		ManualRotation: true,
		Compressor:     h.comp,
	}
}

// WriteManifest writes the manifest with status (running at a checkpoint).
func (h *Harness) WriteManifest(status string) error {
	h.Manifest.Status, h.Manifest.Finished = status, time.Now().UTC()
	return export.WriteManifest(h.Dir, h.Manifest)
}

// Finish ends the run: the manifest with status and the dataset card; for a
// complete run the journal is removed and, in a shard run, the _SUCCESS
// marker written last. It releases the journal whatever happens.
func (h *Harness) Finish(status string) error {
	defer h.journal.close()
	if err := h.WriteManifest(status); err != nil {
		return err
	}
	if err := export.WriteCard(h.Dir, h.Manifest); err != nil {
		return err
	}
	if status != export.StatusComplete {
		return nil
	}
	if err := h.journal.remove(); err != nil {
		return fmt.Errorf("removing the journal of a complete run: %w", err)
	}
	if h.Manifest.Shard != nil {
		// The marker redraft merge waits for, written last.
		return export.WriteFileAtomic(filepath.Join(h.Dir, export.SuccessName), nil)
	}
	return nil
}

// Close releases the journal of a run that ends without Finish (an error
// before it started writing); safe after Finish.
func (h *Harness) Close() { h.journal.close() }
