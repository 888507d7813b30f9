package judge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CacheFile is the name of the cache's file inside its directory.
const CacheFile = "judge-cache.jsonl"

// entry is a cached judge response.
type entry struct {
	Content      string `json:"content"`
	Reasoning    string `json:"reasoning,omitempty"`
	FinishReason string `json:"finish_reason,omitempty"`
	Model        string `json:"model,omitempty"` // as the server reported it
}

// line is one line of the cache file.
type line struct {
	V   int    `json:"v"`
	Key string `json:"key"`
	entry
	At string `json:"at,omitempty"` // RFC 3339 UTC, for people reading the file
}

// Cache is a persistent judge-call cache keyed by RequestKey (sha256 of the
// canonical JSON of model, messages, sampling settings and seed). It stores
// the raw response (content, reasoning, finish_reason, model), not the
// parsed score, so a changed scale or parser re-reads cached output.
//
// On disk it is one append-only JSONL file, dir/judge-cache.jsonl, one
// object per line: {"v":1,"key":"<64 hex>","content":...,"reasoning":...,
// "finish_reason":...,"model":...,"at":...}. OpenCache reads it once and
// keeps only an index in memory (key -> line offset, about 150 bytes per
// entry); a hit reads its line back from the file. A later line for a key
// wins. A torn last line (a crash mid-write leaves text without its newline)
// is ignored and cut off so that the next entry starts on a fresh line;
// other lines that do not decode are skipped. Neither is fatal. Each entry
// is appended with a single write(2) as soon as its call returns (no
// buffering in the process, no fsync): a process crash loses nothing already
// returned, a power loss may lose the tail.
//
// While open, the file is locked (flock, on Unix) so that a second Cache on
// the same directory, in this or another process, fails at OpenCache rather
// than interleaving writes. Close releases the lock; a closed Cache answers
// nothing and stores nothing (judges using it call every time). A Cache is
// safe for concurrent use, and concurrent identical calls are made once.
type Cache struct {
	path string

	mu       sync.Mutex
	index    map[string]span  // entries on disk
	mem      map[string]entry // entries whose append failed
	inflight map[string]*flight
	skipped  int // lines skipped at load (not counting a torn tail)

	fmu    sync.Mutex // guards f's writes, size, werr and closed
	f      *os.File
	size   int64 // end of the last complete line
	werr   error
	closed bool
}

// span locates one line of the file.
type span struct{ off, n int64 }

type flight struct {
	done chan struct{}
	e    entry
	err  error
}

// OpenCache opens (creating if needed) the cache in dir.
func OpenCache(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("judge cache: %w", err)
	}
	path := filepath.Join(dir, CacheFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("judge cache: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("judge cache %s: %w", path, err)
	}
	c := &Cache{path: path, f: f, index: map[string]span{}, mem: map[string]entry{}, inflight: map[string]*flight{}}
	if err := c.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("judge cache %s: %w", path, err)
	}
	return c, nil
}

// load indexes every complete line, truncates a torn tail and positions the
// file for appending.
func (c *Cache) load() error {
	r := bufio.NewReaderSize(c.f, 1<<16)
	var off int64 // start of the current line
	for {
		b, err := r.ReadBytes('\n')
		if err == io.EOF {
			break // b (possibly empty) has no newline: a torn tail
		}
		if err != nil {
			return err
		}
		if l, ok := decodeLine(b); ok {
			c.index[l.Key] = span{off, int64(len(b))}
		} else {
			c.skipped++
		}
		off += int64(len(b))
	}
	if err := c.f.Truncate(off); err != nil {
		return err
	}
	c.size = off
	_, err := c.f.Seek(off, io.SeekStart)
	return err
}

func decodeLine(b []byte) (line, bool) {
	var l line
	if json.Unmarshal(b, &l) != nil || l.V != 1 || len(l.Key) != 64 {
		return line{}, false
	}
	return l, true
}

// Len is the number of cached responses.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.index) + len(c.mem)
}

// Err is the first error met while writing or reading the file since
// OpenCache (nil if none). An entry that could not be written stays cached
// in memory; one that could not be read back is fetched again.
func (c *Cache) Err() error {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	return c.werr
}

func (c *Cache) noteErr(err error) {
	c.fmu.Lock()
	if c.werr == nil {
		c.werr = err
	}
	c.fmu.Unlock()
}

// Close releases the file and its lock.
func (c *Cache) Close() error {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.f.Close() // closing the descriptor releases the flock
}

func (c *Cache) isClosed() bool {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	return c.closed
}

// lookup returns the cached entry for key. Call with c.mu held.
func (c *Cache) lookup(key string) (entry, bool) {
	if e, ok := c.mem[key]; ok {
		return e, true
	}
	sp, ok := c.index[key]
	if !ok {
		return entry{}, false
	}
	b := make([]byte, sp.n)
	if _, err := c.f.ReadAt(b, sp.off); err != nil {
		if !errors.Is(err, os.ErrClosed) { // closed meanwhile: just a miss
			c.noteErr(fmt.Errorf("reading judge cache: %w", err))
		}
		return entry{}, false
	}
	l, ok := decodeLine(b)
	if !ok || l.Key != key {
		c.noteErr(fmt.Errorf("judge cache line at offset %d no longer holds its entry", sp.off))
		return entry{}, false
	}
	return l.entry, true
}

// store records a fresh entry in the file (or, if that fails, in memory).
func (c *Cache) store(key string, e entry) {
	b, err := json.Marshal(line{V: 1, Key: key, entry: e, At: time.Now().UTC().Format(time.RFC3339)})
	var sp span
	c.fmu.Lock()
	switch {
	case c.closed:
		c.fmu.Unlock()
		return
	case err == nil:
		b = append(b, '\n')
		var n int
		n, err = c.f.Write(b)
		sp = span{c.size, int64(len(b))}
		c.size += int64(n)
		if err != nil && n > 0 {
			// A partial line: cut it so the file stays line-aligned.
			if terr := c.f.Truncate(sp.off); terr == nil {
				c.size = sp.off
				_, _ = c.f.Seek(sp.off, io.SeekStart)
			}
		}
	}
	if err != nil && c.werr == nil {
		c.werr = fmt.Errorf("writing judge cache: %w", err)
	}
	c.fmu.Unlock()
	c.mu.Lock()
	if err == nil {
		c.index[key] = sp
	} else {
		c.mem[key] = e
	}
	c.mu.Unlock()
}

// do returns the cached entry for key, or runs call once for all concurrent
// callers with that key and caches its result when it succeeds. shared is
// true when this caller's answer did not come from its own call. A caller
// whose ctx ends while it waits for another's call returns ctx's error; if
// the other call fails, a waiting caller makes its own.
func (c *Cache) do(ctx context.Context, key string, call func() (entry, error)) (e entry, shared bool, err error) {
	if c.isClosed() {
		e, err = call()
		return e, false, err
	}
	c.mu.Lock()
	if e, ok := c.lookup(key); ok {
		c.mu.Unlock()
		return e, true, nil
	}
	if f, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			if f.err == nil {
				return f.e, true, nil
			}
		case <-ctx.Done():
			return entry{}, false, ctx.Err()
		}
		e, err := call()
		if err == nil {
			c.store(key, e)
		}
		return e, false, err
	}
	f := &flight{done: make(chan struct{}), err: errors.New("judge call did not return")}
	c.inflight[key] = f
	c.mu.Unlock()

	defer func() {
		c.mu.Lock()
		delete(c.inflight, key)
		c.mu.Unlock()
		close(f.done)
	}()
	e, err = call()
	if err == nil {
		c.store(key, e)
	}
	f.e, f.err = e, err
	return e, false, err
}
