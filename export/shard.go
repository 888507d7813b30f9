package export

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"
)

// ShardInfo describes one finished shard.
type ShardInfo struct {
	// Path is relative to the output directory, with forward slashes.
	Path   string `json:"path"`
	Rows   int64  `json:"rows"`
	Groups int64  `json:"groups"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// ShardOptions configures a ShardWriter.
type ShardOptions struct {
	// Dir is the output directory; shards go to Dir/data/<Dataset>/.
	Dir     string
	Dataset string
	// Split names the files (<split>-00000.parquet), a pattern Hugging Face
	// datasets recognises.
	Split string
	// Schema is the schema version written into every shard's metadata.
	Schema string
	// MaxBytes rotates to a new shard once the current one reaches it.
	MaxBytes int64
	// MaxRows rotates to a new shard once the current one holds this many
	// rows (0: no limit). Besides keeping files a handy size, it bounds
	// the memory of the open shard: its footer metadata, kept in memory
	// until the shard closes, grows with its row groups, and rows that
	// compress well would otherwise fit thousands of row groups into
	// MaxBytes.
	MaxRows int64
	// RowGroupRows bounds a row group. Modest row groups keep nested column
	// chunks far below the 2 GiB that breaks pyarrow readers.
	RowGroupRows int64
	// Metadata is extra key/value metadata for every shard.
	Metadata map[string]string
	// FirstIndex numbers the first shard (a resumed run continues numbering).
	FirstIndex int
	// ManualRotation leaves rotation to the caller (Close ends the current
	// shard and the next write starts another), for a caller that must
	// decide where shards end, such as a journal that commits every
	// dataset's shards together.
	ManualRotation bool
	// Compressor compresses the pages; writers of one job may share one.
	// Nil: the writer makes its own.
	Compressor *Compressor
}

// ShardWriter writes rows of type T into rotated Parquet shards. Each shard is
// written under a hidden temporary name and renamed only once complete, so a
// reader never sees a partial shard. Groups never straddle two shards.
// A ShardWriter is not safe for concurrent use.
type ShardWriter[T any] struct {
	opts   ShardOptions
	cur    *openShard[T]
	next   int
	shards []ShardInfo
	// The Parquet writer and its output buffer serve shard after shard
	// (reset at each open), so that a rotation does not drop a writer's
	// buffers for the collector while the next one allocates its own.
	pw *parquet.GenericWriter[T]
	bw *bufio.Writer
}

type openShard[T any] struct {
	tmp, final string
	f          *os.File
	h          hash.Hash
	cw         *countingWriter
	bw         *bufio.Writer
	w          *parquet.GenericWriter[T]
	rows       int64
	groups     int64
}

// NewShardWriter prepares a writer; no file is created until the first row.
func NewShardWriter[T any](opts ShardOptions) (*ShardWriter[T], error) {
	if opts.Split == "" {
		opts.Split = "train"
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 256 << 20
	}
	if opts.RowGroupRows <= 0 {
		opts.RowGroupRows = 4096
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "data", opts.Dataset), 0o755); err != nil {
		return nil, fmt.Errorf("creating shard directory: %w", err)
	}
	if opts.Compressor == nil {
		c, err := NewCompressor()
		if err != nil {
			return nil, err
		}
		opts.Compressor = c
	}
	return &ShardWriter[T]{opts: opts, next: opts.FirstIndex}, nil
}

// WriteGroup appends the rows of one group, rotating first if the current
// shard is full.
func (w *ShardWriter[T]) WriteGroup(ctx context.Context, rows []T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !w.opts.ManualRotation && w.Full() {
		if err := w.finish(); err != nil {
			return err
		}
	}
	if w.cur == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	if _, err := w.cur.w.Write(rows); err != nil {
		return fmt.Errorf("writing %s: %w", w.cur.tmp, err)
	}
	w.cur.rows += int64(len(rows))
	w.cur.groups++
	return nil
}

func (w *ShardWriter[T]) open() error {
	name := fmt.Sprintf("%s-%05d.parquet", w.opts.Split, w.next)
	dir := filepath.Join(w.opts.Dir, "data", w.opts.Dataset)
	s := &openShard[T]{final: filepath.Join(dir, name), tmp: filepath.Join(dir, "."+name+".tmp")}
	f, err := os.Create(s.tmp)
	if err != nil {
		return fmt.Errorf("creating shard: %w", err)
	}
	s.f, s.h = f, sha256.New()
	s.cw = &countingWriter{w: io.MultiWriter(f, s.h)}
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(s.cw, 256<<10)
		opts := []parquet.WriterOption{
			parquet.Compression(w.opts.Compressor),
			parquet.MaxRowsPerRowGroup(w.opts.RowGroupRows),
			parquet.CreatedBy("redraft", "", ""),
			parquet.KeyValueMetadata("redraft.schema", w.opts.Schema),
			parquet.KeyValueMetadata("redraft.dataset", w.opts.Dataset),
		}
		for k, v := range w.opts.Metadata {
			opts = append(opts, parquet.KeyValueMetadata(k, v))
		}
		w.pw = parquet.NewGenericWriter[T](w.bw, opts...)
	} else {
		// Whatever an aborted shard left buffered is dropped here.
		w.bw.Reset(s.cw)
		w.pw.Reset(w.bw)
	}
	s.bw, s.w = w.bw, w.pw
	w.cur = s
	w.next++
	return nil
}

// finish completes the current shard: footer, flush, fsync, rename.
func (w *ShardWriter[T]) finish() error {
	s := w.cur
	w.cur = nil
	err := s.w.Close()
	if err == nil {
		err = s.bw.Flush()
	}
	if err == nil {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(s.tmp, s.final)
	}
	if err != nil {
		os.Remove(s.tmp)
		return fmt.Errorf("finishing shard %s: %w", s.final, err)
	}
	syncDir(filepath.Dir(s.final))
	rel, _ := filepath.Rel(w.opts.Dir, s.final)
	w.shards = append(w.shards, ShardInfo{
		Path: filepath.ToSlash(rel), Rows: s.rows, Groups: s.groups,
		Bytes: s.cw.n, SHA256: hex.EncodeToString(s.h.Sum(nil)),
	})
	return nil
}

// Shards returns the shards finished so far.
func (w *ShardWriter[T]) Shards() []ShardInfo { return w.shards }

// Full reports whether the current shard has reached MaxBytes or MaxRows.
func (w *ShardWriter[T]) Full() bool {
	return w.cur != nil && (w.cur.w.Size() >= w.opts.MaxBytes || w.opts.MaxRows > 0 && w.cur.rows >= w.opts.MaxRows)
}

// Close finishes the current shard and returns every shard written. Writing
// after Close starts a new shard.
func (w *ShardWriter[T]) Close() ([]ShardInfo, error) {
	if w.cur != nil {
		if err := w.finish(); err != nil {
			return w.shards, err
		}
	}
	return w.shards, nil
}

// Abort discards the shard being written, keeping the finished ones, and
// returns those.
func (w *ShardWriter[T]) Abort() []ShardInfo {
	if s := w.cur; s != nil {
		w.cur = nil
		s.f.Close()
		os.Remove(s.tmp)
	}
	return w.shards
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// syncDir makes a rename durable; errors are ignored because some filesystems
// do not support syncing directories.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// WriteFileAtomic writes data to path through a temporary file and a rename.
func WriteFileAtomic(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}
