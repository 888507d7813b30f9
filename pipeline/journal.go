package pipeline

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout"
)

// The journal makes a run resumable. It lives in <out>/.redraft/ (hidden, so
// Hugging Face datasets ignores it) and has two parts:
//
//   - journal.json, replaced atomically at every checkpoint: the run's
//     identity, the shards committed so far, the run's State and the
//     failures record's length at that checkpoint;
//   - wal-NNNNNN.log, a write-ahead log of every flush since that
//     checkpoint: the rows themselves, framed with a length and a CRC so a
//     torn last record is recognised and dropped.
//
// A checkpoint closes every dataset's open shard at a task boundary, so the
// committed shards always hold whole tasks and together end at the same
// point. A resumed run deletes whatever the journal does not list, replays
// the log's records up to the last one that ends a task (no server call),
// and asks the source to skip the tasks the replayed state counts. So every
// group is written exactly once, and only groups in flight are generated
// again, with the same seeds.
const (
	journalDir  = ".redraft"
	journalName = "journal.json"
	// journalVersion changes when the journal's format does; a run whose
	// journal has another version cannot be resumed by this build.
	journalVersion = 1
	// walSyncEvery bounds what a power loss can take: records appended since
	// the last fsync (a killed process loses nothing appended).
	walSyncEvery = time.Second
	// walBufMax bounds the memory of a log record being written: a record
	// up to this size is written at once, a larger one streamed (see
	// journal.append).
	walBufMax = 4 << 20
)

var walTable = crc32.MakeTable(crc32.Castagnoli)

// journalMeta is journal.json.
type journalMeta struct {
	Version    int                           `json:"version"`
	ConfigHash string                        `json:"config_hash"`
	Identity   json.RawMessage               `json:"identity"`
	Started    time.Time                     `json:"started"`
	Segment    int64                         `json:"segment"`
	Shards     map[string][]export.ShardInfo `json:"shards"`
	State      *State                        `json:"state"`
	Failures   journalFailures               `json:"failures"`
	// Sessions counts the processes that have worked on the run.
	Sessions int `json:"sessions"`
	// Filtered is the sft filter's counts at the checkpoint.
	Filtered map[string]int64 `json:"filtered,omitempty"`
	// Shard is the part of a sharded run this directory holds.
	Shard rollout.Shard `json:"shard"`
	// SFT is an sft job's state at the checkpoint (RunSFT).
	SFT *sftState `json:"sft,omitempty"`
}

type journalFailures struct {
	Count int64 `json:"count"`
	Bytes int64 `json:"bytes"`
}

// walRecord is one flush.
type walRecord struct {
	Groups []walGroup `json:"groups"`
	State  State      `json:"state"`
}

type walGroup struct {
	Task    rollout.Task   `json:"task"`
	Turn    int            `json:"turn"`
	More    bool           `json:"more,omitempty"`
	Dropped bool           `json:"dropped,omitempty"`
	Rows    []export.RLRow `json:"rows"`
}

func (r *walRecord) flush() *Flush {
	f := &Flush{Groups: make([]Out, len(r.Groups)), State: r.State}
	for i, g := range r.Groups {
		f.Groups[i] = Out{Task: g.Task, Turn: g.Turn, More: g.More, Rows: g.Rows, Dropped: g.Dropped}
	}
	return f
}

func newWALRecord(f *Flush) *walRecord {
	r := &walRecord{Groups: make([]walGroup, len(f.Groups)), State: f.State}
	for i, g := range f.Groups {
		r.Groups[i] = walGroup{Task: g.Task, Turn: g.Turn, More: g.More, Rows: g.Rows, Dropped: g.Dropped}
	}
	return r
}

// journal is an open run journal. It is used by the writing goroutine only.
type journal struct {
	dir      string // <out>/.redraft
	meta     journalMeta
	wal      *os.File
	lastSync time.Time
	// buf assembles a record of up to walBufMax bytes (see append); bw
	// writes a larger one; enc encodes them.
	buf bytes.Buffer
	bw  *bufio.Writer
	enc *walEncoder
}

func journalPath(out string) string { return filepath.Join(out, journalDir) }

func (j *journal) walPath(segment int64) string {
	return filepath.Join(j.dir, fmt.Sprintf("wal-%06d.log", segment))
}

// readJournal loads a run's journal.json; os.ErrNotExist when there is none.
func readJournal(out string) (*journalMeta, error) {
	b, err := os.ReadFile(filepath.Join(journalPath(out), journalName))
	if err != nil {
		return nil, err
	}
	var m journalMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(journalPath(out), journalName), err)
	}
	if m.Version != journalVersion {
		return nil, fmt.Errorf("%s was written by a build with journal version %d; this build reads version %d: pass --overwrite to start over", filepath.Join(journalPath(out), journalName), m.Version, journalVersion)
	}
	return &m, nil
}

// createJournal starts the journal of a new run.
func createJournal(out string, identity json.RawMessage, hash string, started time.Time, shard rollout.Shard) (*journal, error) {
	j := &journal{dir: journalPath(out), meta: journalMeta{
		Version: journalVersion, ConfigHash: hash, Identity: identity, Started: started,
		Shards: map[string][]export.ShardInfo{}, Sessions: 1, Shard: shard,
	}}
	if err := os.MkdirAll(j.dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating journal: %w", err)
	}
	if err := j.writeMeta(); err != nil {
		return nil, err
	}
	if err := j.openWAL(0); err != nil {
		return nil, err
	}
	return j, nil
}

// openWAL opens the log of the current segment for appending, truncated to
// size.
func (j *journal) openWAL(size int64) error {
	f, err := os.OpenFile(j.walPath(j.meta.Segment), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("opening journal: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("opening journal: %w", err)
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("opening journal: %w", err)
	}
	j.wal, j.lastSync = f, time.Now()
	return nil
}

// writeMeta replaces journal.json with j.meta.
func (j *journal) writeMeta() error { return j.writeMetaOf(&j.meta) }

// writeMetaOf replaces journal.json with m, durably (see
// export.WriteFileAtomic); on error journal.json is unchanged.
func (j *journal) writeMetaOf(m *journalMeta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("writing journal: %w", err)
	}
	if err := export.WriteFileAtomic(filepath.Join(j.dir, journalName), b); err != nil {
		return fmt.Errorf("writing journal: %w", err)
	}
	return nil
}

// append logs one flush as one record: an 8-byte header (the payload's
// length and its CRC-32C) and the JSON payload. A record of up to
// walBufMax bytes is assembled in j.buf and written with a single write, so
// a killed process leaves either the whole record or a torn tail. A larger
// one (a long response) is encoded twice instead of being held in memory:
// once to learn its length and CRC, then again straight to the file behind
// its header, in several writes. A record torn anywhere is still caught on
// reading: its header promises more bytes than follow, or its CRC fails, so
// scanWAL stops before it exactly as for a torn single write.
func (j *journal) append(f *Flush) error {
	if j.enc == nil {
		j.enc = &walEncoder{}
	}
	e := j.enc
	j.buf.Reset()
	j.buf.Write(make([]byte, 8))
	err := e.record(&cappedWriter{b: &j.buf, max: walBufMax}, f)
	switch {
	case err == nil:
		if err := j.writeFramed(); err != nil {
			return err
		}
	case errors.Is(err, errRecordTooBig):
		if err := j.appendLarge(f); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	default:
		return fmt.Errorf("journal: %w", err)
	}
	return j.synced()
}

// appendJSON logs v, JSON-encoded, as one record written with a single
// write (the records of sft jobs: one input's rows).
func (j *journal) appendJSON(v any) error {
	j.buf.Reset()
	j.buf.Write(make([]byte, 8))
	if err := json.NewEncoder(&j.buf).Encode(v); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := j.writeFramed(); err != nil {
		return err
	}
	return j.synced()
}

// writeFramed writes the record assembled in j.buf (8 bytes left for its
// header, then the payload) behind its header: the payload's length and
// CRC-32C.
func (j *journal) writeFramed() error {
	b := j.buf.Bytes()
	payload := b[8:]
	binary.LittleEndian.PutUint32(b[:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(payload, walTable))
	if _, err := j.wal.Write(b); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// synced drops an outsized record buffer and syncs the log when
// walSyncEvery has passed since the last sync.
func (j *journal) synced() error {
	if j.buf.Cap() > 2*walBufMax {
		j.buf = bytes.Buffer{}
	}
	if time.Since(j.lastSync) >= walSyncEvery {
		if err := j.wal.Sync(); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		j.lastSync = time.Now()
	}
	return nil
}

// appendLarge writes a record over walBufMax: a first encoding measures it,
// the second goes to the file through a small buffer.
func (j *journal) appendLarge(f *Flush) error {
	var m crcCounter
	if err := j.enc.record(&m, f); err != nil {
		return err
	}
	if m.n > math.MaxUint32 {
		return fmt.Errorf("a flush of %d bytes is over the log's 4 GiB record limit", m.n)
	}
	if j.bw == nil {
		j.bw = bufio.NewWriterSize(j.wal, 256<<10)
	} else {
		j.bw.Reset(j.wal)
	}
	var head [8]byte
	binary.LittleEndian.PutUint32(head[:4], uint32(m.n))
	binary.LittleEndian.PutUint32(head[4:], m.crc)
	j.bw.Write(head[:])
	var again crcCounter
	if err := j.enc.record(io.MultiWriter(j.bw, &again), f); err != nil {
		return err
	}
	if err := j.bw.Flush(); err != nil {
		return err
	}
	j.bw.Reset(nil)
	if again != m {
		// Impossible (encoding is deterministic); the header is wrong, so
		// the record reads as corrupt and the run must not go on.
		return fmt.Errorf("record encoded differently twice (%d bytes, then %d)", m.n, again.n)
	}
	return nil
}

// checkpoint records the shards committed and, through update, the job's
// state at that point, and starts a new log segment. The caller has made the shards and the failures record durable.
// It is all or nothing: j.meta changes only once journal.json holds the
// checkpoint durably; on error journal.json, j.meta and the current log are
// as they were.
func (j *journal) checkpoint(shards map[string][]export.ShardInfo, update func(*journalMeta)) error {
	next := j.meta
	next.Segment++
	next.Shards = shards
	update(&next)
	// The new segment's log exists (empty) before journal.json names it.
	path := j.walPath(next.Segment)
	wal, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := j.writeMetaOf(&next); err != nil {
		wal.Close()
		os.Remove(path)
		return err
	}
	old := j.meta.Segment
	// The old log is no longer read: an error closing it loses nothing.
	j.wal.Close()
	j.meta, j.wal, j.lastSync = next, wal, time.Now()
	os.Remove(j.walPath(old))
	return nil
}

// close releases the log; remove deletes the journal of a complete run.
func (j *journal) close() error {
	if j.wal == nil {
		return nil
	}
	err := j.wal.Close()
	j.wal = nil
	return err
}

func (j *journal) remove() error {
	j.close()
	return os.RemoveAll(j.dir)
}

// scanWAL reads a log's records in order, calling fn with each and the
// offset where it ends, and stops at the end or at the first torn or
// corrupt record. It returns the offset where the valid records end.
func scanWAL[T any](path string, fn func(rec *T, end int64) error) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading journal: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var off int64
	var head [8]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(br, head[:]); err != nil {
			return off, nil // end, or a torn header
		}
		n := binary.LittleEndian.Uint32(head[:4])
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return off, nil // torn payload
		}
		if crc32.Checksum(payload, walTable) != binary.LittleEndian.Uint32(head[4:]) {
			return off, nil
		}
		var rec T
		if err := json.Unmarshal(payload, &rec); err != nil {
			return off, nil
		}
		end := off + 8 + int64(n)
		if err := fn(&rec, end); err != nil {
			return off, err
		}
		off = end
	}
}

// resumePoint finds the end of the last record of a segment's log that ends
// a task: everything after it is redone.
func resumePoint(path string) (end int64, records int, err error) {
	type stateOnly struct {
		State State `json:"state"`
	}
	n := 0
	_, err = scanWAL(path, func(rec *stateOnly, e int64) error {
		n++
		if rec.State.Resumable {
			end, records = e, n
		}
		return nil
	})
	return end, records, err
}

// replayWAL hands the first n records of a log to fn.
func replayWAL(path string, n int, fn func(*Flush) error) error {
	i := 0
	errStop := errors.New("stop")
	_, err := scanWAL(path, func(rec *walRecord, _ int64) error {
		if i == n {
			return errStop
		}
		i++
		return fn(rec.flush())
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	if err == nil && i < n {
		err = fmt.Errorf("journal %s: %d records, expected %d", path, i, n)
	}
	return err
}

// cleanData removes from <out>/data every shard file (export.IsShardPath)
// that the committed shards do not list: shards written after the last
// checkpoint, and temporary files. A file not named as redraft's shards is
// never removed: it stops the resume, named.
func cleanData(out string, shards map[string][]export.ShardInfo) error {
	keep := map[string]int64{} // path -> bytes
	for _, list := range shards {
		for _, s := range list {
			keep[filepath.FromSlash(s.Path)] = s.Bytes
		}
	}
	root := filepath.Join(out, "data")
	var foreign, stale []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(out, path)
		if err != nil {
			return err
		}
		if _, ok := keep[rel]; ok {
			return nil
		}
		// Only redraft's own shard files are removed: one the journal does
		// not list was written after its last checkpoint. Anything else is
		// the user's, and stops the resume by name (openRun checks first;
		// this keeps cleanData safe on its own).
		if !export.IsShardPath(filepath.ToSlash(rel)) || !d.Type().IsRegular() {
			foreign = append(foreign, filepath.ToSlash(rel))
			return nil
		}
		stale = append(stale, path)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cleaning %s for resume: %w", root, err)
	}
	if len(foreign) > 0 {
		return fmt.Errorf("resuming: output directory %s holds files under data/ that redraft did not write: %s; move them away (redraft deletes only its own shards)", out, strings.Join(foreign, ", "))
	}
	for _, p := range stale {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("cleaning %s for resume: %w", root, err)
		}
	}
	for rel, size := range keep {
		st, err := os.Stat(filepath.Join(out, rel))
		if err != nil {
			return fmt.Errorf("resuming: committed shard %s: %w (pass --overwrite to start over)", rel, err)
		}
		if st.Size() != size {
			return fmt.Errorf("resuming: committed shard %s has %d bytes, the journal recorded %d (pass --overwrite to start over)", rel, st.Size(), size)
		}
	}
	return nil
}

// identityDiff lists the settings that differ between two identities, as
// dotted paths with both values, so a refused resume says what changed.
func identityDiff(before, after json.RawMessage) []string {
	var a, b any
	json.Unmarshal(before, &a)
	json.Unmarshal(after, &b)
	fa, fb := map[string]string{}, map[string]string{}
	flatten("", a, fa)
	flatten("", b, fb)
	var out []string
	for k, va := range fa {
		if vb, ok := fb[k]; !ok {
			out = append(out, fmt.Sprintf("%s: %s -> (unset)", k, va))
		} else if va != vb {
			out = append(out, fmt.Sprintf("%s: %s -> %s", k, va, vb))
		}
	}
	for k, vb := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, fmt.Sprintf("%s: (unset) -> %s", k, vb))
		}
	}
	sort.Strings(out)
	return out
}

func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, e, out)
		}
	case []any:
		for i, e := range x {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), e, out)
		}
	case nil:
		// null and absent are the same setting
	default:
		b, _ := json.Marshal(x)
		out[prefix] = string(b)
	}
}

// describeChanges formats identityDiff for an error message.
func describeChanges(changes []string) string {
	if len(changes) == 0 {
		return "the configuration's identity changed"
	}
	const most = 20
	extra := ""
	if len(changes) > most {
		extra = fmt.Sprintf("\n  ... and %d more", len(changes)-most)
		changes = changes[:most]
	}
	return "  " + strings.Join(changes, "\n  ") + extra
}
