package export

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"reflect"

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
	// ManualRotation leaves rotation to the caller (Flush ends the current
	// shard and the next write starts another), for a caller that must
	// decide where shards end, such as a journal that commits every
	// dataset's shards together.
	ManualRotation bool
	// Compressor compresses the pages; writers of one job may share one.
	// Nil: the writer makes its own.
	Compressor *Compressor
	// CreateFile creates the temporary file a shard is written to; nil:
	// os.Create. Tests inject write and fsync failures with it.
	CreateFile func(path string) (ShardFile, error)
}

// ShardFile is the file a shard is written to (*os.File is one).
type ShardFile interface {
	io.Writer
	Sync() error
	Close() error
}

// ShardWriter writes rows of type T into rotated Parquet shards. Each shard is
// written under a hidden temporary name and renamed only once complete
// (footer written, flushed and fsynced), so a reader never sees a partial
// shard. Groups never straddle two shards. A ShardWriter is not safe for
// concurrent use.
//
// Shards are committed in a transaction of two steps, Flush then Commit (or
// Rollback), the same as every dataset writer of a run (SFTWriter,
// VerlPrompts, FailureLog), so that a caller keeping its own record of the
// output (a run's journal, a manifest) never records a shard that is not
// durable, nor loses one it recorded: a shard is finished (durable on disk)
// at a rotation or at Flush, and committed at Commit, which the caller
// calls once its record names the finished shards. Rollback returns to the
// last Commit, deleting the open shard and every shard finished since.
//
// The first failed write, flush, fsync, close or rename makes the writer
// fail: every later WriteGroup and Flush returns that error until Rollback,
// so rows lost with a failed shard can never be followed by rows that look
// committed.
type ShardWriter[T any] struct {
	opts ShardOptions
	cur  *openShard[T]
	next int
	// committed are the shards committed by Commit; finished, those
	// finished since (durable, not yet committed).
	committed, finished []ShardInfo
	// err is the first failure; set, the writer refuses to write until
	// Rollback.
	err error
	// The output buffer serves shard after shard (reset at each open).
	// The Parquet writer does not: each shard gets a new one. A reused one
	// is wrong in parquet-go v0.32.0 (Writer.Reset clears a list the
	// footer shares, so from the third shard on every column chunk's
	// path_in_schema was empty: TestEveryShardsFooterNamesItsColumns), and
	// it would keep the scratch copy of the largest value it wrote (see
	// largeGroupBytes). The cost is an allocation per shard.
	bw *bufio.Writer
	// tail holds what the Parquet writer writes when a shard closes: the
	// page index and the footer, rewritten before they reach the file.
	tail bytes.Buffer
	// textBytes sums the text of a row (see largeGroupBytes); nil when T
	// holds no strings or byte slices.
	textBytes func(reflect.Value) int64
}

type openShard[T any] struct {
	tmp, final string
	f          ShardFile
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
	return &ShardWriter[T]{opts: opts, next: opts.FirstIndex, textBytes: textSizer(reflect.TypeFor[T]())}, nil
}

// ErrWriterFailed marks the error of a writer that failed earlier and has not
// been rolled back.
var ErrWriterFailed = errors.New("writer failed earlier and was not rolled back")

// Err is the failure that stops the writer, nil when it can write.
func (w *ShardWriter[T]) Err() error { return w.err }

func (w *ShardWriter[T]) failed() error {
	return fmt.Errorf("%s shards: %w: %w", w.opts.Dataset, ErrWriterFailed, w.err)
}

// WriteGroup appends the rows of one group, rotating first if the current
// shard is full. An error other than ctx's makes the writer fail (see
// ShardWriter).
func (w *ShardWriter[T]) WriteGroup(ctx context.Context, rows []T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.err != nil {
		return w.failed()
	}
	if !w.opts.ManualRotation && w.Full() {
		if err := w.finish(); err != nil {
			return err
		}
	}
	if w.cur == nil {
		if err := w.open(); err != nil {
			w.err = err
			return err
		}
	}
	large := w.isLarge(rows)
	if _, err := w.cur.w.Write(rows); err != nil {
		w.err = fmt.Errorf("writing %s: %w", w.cur.tmp, err)
		return w.err
	}
	w.cur.rows += int64(len(rows))
	w.cur.groups++
	// The Parquet writer holds a row group's pages in memory until the row
	// group ends; RowGroupRows alone lets long values (a 50 MB response
	// compresses to megabytes) pile up there, so a row group also ends once
	// it holds rowGroupMaxBytes, at a group's end.
	if w.cur.w.Size()-(w.cur.cw.n+int64(w.cur.bw.Buffered())) >= rowGroupMaxBytes {
		if err := w.cur.w.Flush(); err != nil {
			w.err = fmt.Errorf("writing %s: %w", w.cur.tmp, err)
			return w.err
		}
	}
	if large {
		releaseWriterBuffers()
	}
	return nil
}

// isLarge reports whether the text of rows reaches largeGroupBytes.
func (w *ShardWriter[T]) isLarge(rows []T) bool {
	if w.textBytes == nil {
		return false
	}
	var n int64
	for i := range rows {
		if n += w.textBytes(reflect.ValueOf(&rows[i]).Elem()); n >= largeGroupBytes {
			return true
		}
	}
	return false
}

// rowGroupMaxBytes ends a row group (at a group's end) once the pages the
// Parquet writer holds for it reach this size, compressed.
const rowGroupMaxBytes = 16 << 20

func (w *ShardWriter[T]) open() error {
	name := fmt.Sprintf("%s-%05d.parquet", w.opts.Split, w.next)
	dir := filepath.Join(w.opts.Dir, "data", w.opts.Dataset)
	s := &openShard[T]{final: filepath.Join(dir, name), tmp: filepath.Join(dir, "."+name+".tmp")}
	create := w.opts.CreateFile
	if create == nil {
		create = func(path string) (ShardFile, error) { return os.Create(path) }
	}
	f, err := create(s.tmp)
	if err != nil {
		return fmt.Errorf("creating shard: %w", err)
	}
	s.f, s.h = f, sha256.New()
	s.cw = &countingWriter{w: io.MultiWriter(f, s.h)}
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(s.cw, 256<<10)
	} else {
		// Whatever an aborted shard left buffered is dropped here.
		w.bw.Reset(s.cw)
	}
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
	opts = append(opts, noValueBounds(parquet.SchemaOf(new(T)))...)
	pw := parquet.NewGenericWriter[T](w.bw, opts...)
	s.bw, s.w = w.bw, pw
	w.cur = s
	w.next++
	return nil
}

// finish completes the current shard: footer, flush, fsync, rename. The shard
// is then finished, not committed. A failure removes the temporary file and
// makes the writer fail.
func (w *ShardWriter[T]) finish() error {
	s := w.cur
	w.cur = nil
	err := w.closeParquet(s)
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
		w.err = fmt.Errorf("finishing shard %s: %w", s.final, err)
		return w.err
	}
	syncDir(filepath.Dir(s.final))
	rel, _ := filepath.Rel(w.opts.Dir, s.final)
	w.finished = append(w.finished, ShardInfo{
		Path: filepath.ToSlash(rel), Rows: s.rows, Groups: s.groups,
		Bytes: s.cw.n, SHA256: hex.EncodeToString(s.h.Sum(nil)),
	})
	return nil
}

// closeParquet ends the shard's Parquet stream and flushes it to the file.
// The last row group is written first, so that what the Parquet writer
// writes at its Close is only the page index and the footer; the footer is
// rewritten (see withoutColumnIndex) before it reaches the file.
func (w *ShardWriter[T]) closeParquet(s *openShard[T]) error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	if err := s.bw.Flush(); err != nil {
		return err
	}
	w.tail.Reset()
	s.bw.Reset(&w.tail)
	if err := s.w.Close(); err != nil {
		return err
	}
	if err := s.bw.Flush(); err != nil {
		return err
	}
	tail, err := withoutColumnIndex(w.tail.Bytes())
	if err != nil {
		return err
	}
	_, err = s.cw.Write(tail)
	return err
}

// Shards returns every finished shard, committed or not, in order.
func (w *ShardWriter[T]) Shards() []ShardInfo {
	return append(append([]ShardInfo{}, w.committed...), w.finished...)
}

// Committed returns the shards committed so far.
func (w *ShardWriter[T]) Committed() []ShardInfo { return w.committed }

// Full reports whether the current shard has reached MaxBytes or MaxRows.
func (w *ShardWriter[T]) Full() bool {
	return w.cur != nil && (w.cur.w.Size() >= w.opts.MaxBytes || w.opts.MaxRows > 0 && w.cur.rows >= w.opts.MaxRows)
}

// Flush finishes the current shard and returns every finished shard,
// committed or not. Writing after Flush starts a new shard. It fails, and
// finishes nothing, when the writer has failed.
func (w *ShardWriter[T]) Flush() ([]ShardInfo, error) {
	if w.err != nil {
		return w.Shards(), w.failed()
	}
	if w.cur != nil {
		if err := w.finish(); err != nil {
			return w.Shards(), err
		}
	}
	return w.Shards(), nil
}

// Commit commits the finished shards and returns every committed shard. The
// caller commits once its own record names them (they are durable since
// they finished); the shard being written, if any, stays open.
func (w *ShardWriter[T]) Commit() []ShardInfo {
	w.committed = append(w.committed, w.finished...)
	w.finished = nil
	return w.committed
}

// Rollback returns to the last Commit: it deletes the shard being written
// and every shard finished since, clears a failure, and numbers the next
// shard after the committed ones. It returns the committed shards; its error
// names the files it could not delete.
func (w *ShardWriter[T]) Rollback() ([]ShardInfo, error) {
	var errs []error
	if s := w.cur; s != nil {
		w.cur = nil
		s.f.Close()
		if err := os.Remove(s.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, sh := range w.finished {
		if err := os.Remove(filepath.Join(w.opts.Dir, filepath.FromSlash(sh.Path))); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(w.finished) > 0 {
		syncDir(filepath.Join(w.opts.Dir, "data", w.opts.Dataset))
	}
	w.finished, w.err = nil, nil
	w.next = w.opts.FirstIndex + len(w.committed)
	if err := errors.Join(errs...); err != nil {
		return w.committed, fmt.Errorf("rolling back %s shards: %w", w.opts.Dataset, err)
	}
	return w.committed, nil
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
