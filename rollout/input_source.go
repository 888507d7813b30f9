package rollout

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// MaxSkippedRecords is the most skipped records a reader keeps for Skipped;
// beyond it only SkippedTotal grows, so that a file of millions of bad
// records cannot exhaust memory.
const MaxSkippedRecords = 10000

// SkippedRecord is one input record dropped under OnErrorSkip. Line is 0 when
// the whole file was dropped (an empty file, a file that is not input).
type SkippedRecord struct {
	File   string
	Line   int
	Field  string
	Reason string
}

// ErrInputChanged is wrapped by the error a resumed reader returns when the
// tasks it skips are not the ones the run had already done.
var ErrInputChanged = errors.New("input changed since the run started")

// inputFile is one file of the input, in reading order.
type inputFile struct {
	path   string
	format string
	// notInput says why the file is not read ("" when it is read).
	notInput string
}

// inputExt maps the extensions read from a directory to their format.
var inputExt = map[string]string{".jsonl": "jsonl", ".parquet": "parquet", ".pq": "parquet"}

// formatOf picks a named file's format: the configured one, else by
// extension, else JSONL.
func formatOf(configured, path string) string {
	if configured != "" {
		return configured
	}
	if f, ok := extFormat(path); ok {
		return f
	}
	return "jsonl"
}

// extFormat is the format a file's extension names; a gzip-compressed JSONL
// file (*.jsonl.gz) is JSONL.
func extFormat(path string) (string, bool) {
	name := strings.ToLower(filepath.Base(path))
	if base, ok := strings.CutSuffix(name, ".gz"); ok {
		if filepath.Ext(base) == ".jsonl" {
			return "jsonl", true
		}
		return "", false
	}
	f, ok := inputExt[filepath.Ext(name)]
	return f, ok
}

// gzipped reports whether a file is read through gzip (by its name).
func gzipped(path string) bool { return strings.HasSuffix(strings.ToLower(path), ".gz") }

// listInput returns the files that opts.Path names: itself, or the entries
// of a directory in name order, hidden ones and subdirectories left out.
func listInput(opts InputOptions) ([]inputFile, error) {
	fi, err := os.Stat(opts.Path)
	if err != nil {
		return nil, &InputError{File: opts.Path, Err: err}
	}
	if !fi.IsDir() {
		return []inputFile{{path: opts.Path, format: formatOf(opts.Format, opts.Path)}}, nil
	}
	entries, err := os.ReadDir(opts.Path) // sorted by name
	if err != nil {
		return nil, &InputError{File: opts.Path, Err: err}
	}
	var files []inputFile
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(opts.Path, name)
		st, err := os.Stat(path) // follows symbolic links
		if err != nil {
			return nil, &InputError{File: path, Err: err}
		}
		if st.IsDir() {
			continue
		}
		f := inputFile{path: path}
		format, ok := extFormat(name)
		switch {
		case !ok:
			f.notInput = "not an input file (want *.jsonl, *.jsonl.gz, *.parquet or *.pq)"
		case opts.Format != "" && format != opts.Format:
			f.notInput = fmt.Sprintf("not an input file (source.format is %s)", opts.Format)
		default:
			f.format = format
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		// Treated like an empty file: under skip the run is empty, with a
		// record saying why.
		files = append(files, inputFile{path: opts.Path, notInput: "directory holds no input files"})
	}
	return files, nil
}

// recordReader yields one JSON object per input record of one file.
type recordReader interface {
	// next returns the next record, or bad for a record that cannot be
	// read but after which reading goes on (a line over the limit), or a
	// fatal error; io.EOF at the end.
	next() (line int, raw []byte, bad *InputError, err error)
	close() error
}

func openFile(f inputFile, opts InputOptions) (recordReader, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, &InputError{File: f.path, Err: err}
	}
	if st, err := fh.Stat(); err == nil && st.Size() == 0 {
		// Not even a Parquet footer: report it as empty, not as unreadable.
		return &jsonlReader{path: f.path, f: fh, br: bufio.NewReader(fh)}, nil
	}
	switch f.format {
	case "jsonl":
		max := opts.MaxLineBytes
		if max <= 0 {
			max = 64 << 20
		}
		var r io.Reader = fh
		var closer io.Closer = fh
		if gzipped(f.path) {
			z, err := gzip.NewReader(fh)
			if err != nil {
				fh.Close()
				return nil, &InputError{File: f.path, Err: fmt.Errorf("gzip: %w", err)}
			}
			r, closer = z, multiCloser{z, fh}
		}
		return &jsonlReader{path: f.path, f: closer, br: bufio.NewReaderSize(r, min(64<<10, max+1)), max: max}, nil
	case "parquet":
		fh.Close()
		return openParquetRecords(f.path)
	default:
		fh.Close()
		return nil, &InputError{File: f.path, Field: "format", Err: fmt.Errorf("unknown input format %q (want jsonl or parquet)", f.format)}
	}
}

// jsonlReader reads lines itself rather than with a bufio.Scanner so that a
// line over the limit is passed over up to the next newline, in chunks,
// without ever being held whole.
type jsonlReader struct {
	path string
	f    io.Closer
	br   *bufio.Reader
	buf  []byte
	line int
	max  int
}

func (r *jsonlReader) next() (int, []byte, *InputError, error) {
	for {
		r.buf = r.buf[:0]
		n, over, eof := 0, false, false
		for {
			chunk, err := r.br.ReadSlice('\n')
			n += len(chunk)
			if !over {
				content := len(r.buf) + len(bytes.TrimSuffix(chunk, []byte("\n")))
				if content > r.max {
					over, r.buf = true, r.buf[:0]
				} else {
					r.buf = append(r.buf, chunk...)
				}
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) {
				eof = true
			} else if err != nil {
				return r.line + 1, nil, nil, &InputError{File: r.path, Line: r.line + 1, Err: err}
			}
			break
		}
		if eof && n == 0 {
			return r.line, nil, nil, io.EOF
		}
		r.line++
		if over {
			size := n
			if !eof {
				size-- // the newline
			}
			return r.line, nil, &InputError{File: r.path, Line: r.line,
				Err: fmt.Errorf("line of %d bytes is longer than the limit of %d bytes (source.max_line_bytes)", size, r.max)}, nil
		}
		b := r.buf
		if r.line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a byte-order mark some editors write
		}
		if b = bytes.TrimSpace(b); len(b) > 0 {
			return r.line, b, nil, nil
		}
	}
}

func (r *jsonlReader) close() error { return r.f.Close() }

// multiCloser closes each in order and returns the first error.
type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var first error
	for _, c := range m {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// stream reads the records of every input file in order and applies what
// InputOptions asks on top of decoding: the bad-input policy, duplicate
// detection across all files, the shard filter and the resumed prefix.
type stream struct {
	opts     InputOptions
	recorded bool
	// traj reads recorded agent trajectories (see TrajectoryFile): each
	// record's trajectory is left in lastTraj; duplicates are found on the
	// trajectory ids, shards and groups go by the task ids, whose
	// trajectories must be consecutive (groups holds the task ids whose
	// trajectories are done).
	traj     bool
	lastTraj Trajectory
	group    string
	groups   *dupSet
	dec      *decoder
	files    []inputFile
	nextFile int
	cur      recordReader // nil between files
	curIdx   int          // index of cur in files
	curRecs  int64        // records read from cur
	dups     *dupSet
	skips    skipLog
	// toSkip is what is left of the resumed prefix, hash the TaskIDHash of
	// the ids consumed so far, skipped how many were consumed.
	toSkip, skipped int64
	hash            uint64
	err             error // sticky
}

func openStream(opts InputOptions, recorded bool) (*stream, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	files, err := listInput(opts)
	if err != nil {
		return nil, err
	}
	s := &stream{opts: opts, recorded: recorded, dec: newDecoder(opts), files: files,
		dups: &dupSet{spillDir: opts.SpillDir}, toSkip: opts.SkipTasks}
	// The duplicate-id table lives outside the Go heap: release it when
	// the stream is closed, or collected unclosed.
	runtime.AddCleanup(s, (*dupSet).free, s.dups)
	// A single file is opened now, so that a missing or unreadable file
	// fails at open as it always did.
	if len(files) == 1 && files[0].notInput == "" {
		if s.cur, err = openFile(files[0], opts); err != nil {
			return nil, err
		}
		s.nextFile = 1
	}
	return s, nil
}

// rawRecord is one record as read, or a record-level problem (bad).
type rawRecord struct {
	file int // index into files
	line int
	raw  []byte
	bad  *InputError
}

var errEmptyFile = errors.New("file is empty")

// read returns the next raw record; err is io.EOF at the end of the last
// file, or a fatal error.
func (s *stream) read() (rawRecord, error) {
	for {
		if s.cur == nil {
			if s.nextFile >= len(s.files) {
				return rawRecord{}, io.EOF
			}
			idx := s.nextFile
			f := s.files[idx]
			s.nextFile++
			if f.notInput != "" {
				return rawRecord{file: idx, bad: &InputError{File: f.path, Err: errors.New(f.notInput)}}, nil
			}
			rd, err := openFile(f, s.opts)
			if err != nil {
				return rawRecord{}, err
			}
			s.cur, s.curIdx, s.curRecs = rd, idx, 0
		}
		line, raw, bad, err := s.cur.next()
		if errors.Is(err, io.EOF) {
			cerr := s.cur.close()
			s.cur = nil
			path := s.files[s.curIdx].path
			if cerr != nil {
				return rawRecord{}, &InputError{File: path, Err: cerr}
			}
			if s.curRecs == 0 {
				return rawRecord{file: s.curIdx, bad: &InputError{File: path, Err: errEmptyFile}}, nil
			}
			continue
		}
		if err != nil {
			return rawRecord{}, err
		}
		s.curRecs++
		return rawRecord{file: s.curIdx, line: line, raw: raw, bad: bad}, nil
	}
}

// next returns the next task (and its samples for recorded rollouts) that
// decodes, is not a duplicate, belongs to the shard and lies beyond the
// resumed prefix.
func (s *stream) next(ctx context.Context) (Task, []Sample, error) {
	if s.err != nil {
		return Task{}, nil, s.err
	}
	for {
		if err := ctx.Err(); err != nil {
			return Task{}, nil, err
		}
		rec, err := s.read()
		if err != nil {
			if errors.Is(err, io.EOF) && s.toSkip > 0 {
				err = s.changed(fmt.Sprintf("it now holds %d tasks%s, the run had already done %d", s.skipped, s.shardNote(), s.opts.SkipTasks))
			}
			s.err = err
			return Task{}, nil, err
		}
		var task Task
		var samples []Sample
		var bad error
		shardKey := ""
		switch {
		case rec.bad != nil:
			bad = rec.bad
		case s.traj:
			s.lastTraj, bad = s.dec.trajectory(s.files[rec.file].path, rec.line, rec.raw)
			task.ID, shardKey = s.lastTraj.ID, s.lastTraj.TaskID
		default:
			task, samples, bad = s.dec.decode(s.files[rec.file].path, rec.line, rec.raw, s.recorded)
			shardKey = task.ID
		}
		if bad == nil {
			bad = s.duplicate(task.ID, rec)
		}
		if bad == nil && s.traj {
			bad = s.consecutive(rec)
		}
		if bad != nil {
			var ie *InputError
			if s.opts.OnError != OnErrorSkip || !errors.As(bad, &ie) {
				s.err = bad
				return Task{}, nil, bad
			}
			s.skips.add(ie)
			continue
		}
		if sh := s.opts.Shard; sh.Count > 1 && ShardOf(shardKey, sh.Count) != sh.Index {
			continue
		}
		if s.toSkip > 0 {
			s.hash = TaskIDHash(s.hash, task.ID)
			s.toSkip--
			s.skipped++
			if s.toSkip == 0 && s.hash != s.opts.SkipHash {
				s.err = s.changed(fmt.Sprintf("the ids of its first %d tasks%s hash to %016x, the run recorded %016x", s.skipped, s.shardNote(), s.hash, s.opts.SkipHash))
				return Task{}, nil, s.err
			}
			continue
		}
		return task, samples, nil
	}
}

func (s *stream) changed(detail string) error {
	return &InputError{File: s.opts.Path, Err: fmt.Errorf("resume: %w: %s", ErrInputChanged, detail)}
}

func (s *stream) shardNote() string {
	if sh := s.opts.Shard; sh.Count > 1 {
		return fmt.Sprintf(" in shard %d of %d", sh.Index, sh.Count)
	}
	return ""
}

// duplicate registers id, or reports where it was first seen.
func (s *stream) duplicate(id string, rec rawRecord) error {
	file, line, dup, err := s.dups.add(id, rec.file, rec.line)
	if err != nil || !dup {
		return err
	}
	where := fmt.Sprintf("line %d", line)
	if file != rec.file {
		where = fmt.Sprintf("%s:%d", s.files[file].path, line)
	}
	f := s.dec.fields.ID
	switch s.opts.Layout {
	case LayoutGSM8KSolutions:
		f = "" // the id is made from the line, not read from a field
	case LayoutHumanEval:
		f = "task_id"
	}
	what := "task"
	if s.traj {
		what = "trajectory"
	}
	return &InputError{File: s.files[rec.file].path, Line: rec.line, Field: f,
		Err: fmt.Errorf("duplicate %s id %q (first on %s)", what, id, where)}
}

// consecutive checks that a trajectory's task continues the current group
// or starts one not seen before.
func (s *stream) consecutive(rec rawRecord) error {
	key := s.lastTraj.TaskID
	if key == s.group && s.group != "" {
		return nil
	}
	file, line, dup, err := s.groups.add(key, rec.file, rec.line)
	if err != nil || !dup {
		s.group = key
		return err
	}
	where := fmt.Sprintf("line %d", line)
	if file != rec.file {
		where = fmt.Sprintf("%s:%d", s.files[file].path, line)
	}
	return &InputError{File: s.files[rec.file].path, Line: rec.line, Field: "task_id",
		Err: fmt.Errorf("task %q has trajectories on %s already: a task's trajectories must be consecutive (they form its group)", key, where)}
}

func (s *stream) close() error {
	s.dups.free()
	if s.groups != nil {
		s.groups.free()
	}
	if s.cur == nil {
		return nil
	}
	err := s.cur.close()
	s.cur = nil
	return err
}

// skipLog keeps the first MaxSkippedRecords skipped records and counts all.
// It is locked because the pipeline may list them while a producer reads.
type skipLog struct {
	mu    sync.Mutex
	recs  []SkippedRecord
	total int64
}

func (l *skipLog) add(e *InputError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if len(l.recs) < MaxSkippedRecords {
		l.recs = append(l.recs, SkippedRecord{File: e.File, Line: e.Line, Field: e.Field, Reason: e.Err.Error()})
	}
}

func (l *skipLog) list() []SkippedRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]SkippedRecord(nil), l.recs...)
}

func (l *skipLog) count() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}
