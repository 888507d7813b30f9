package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"unicode/utf8"

	"github.com/redraft/redraft/export"
)

// walEncoder writes a log record's JSON (a walRecord) to a writer without
// holding it whole: encoding/json builds a value's whole encoding in memory
// (and Marshal copies it once more), which for a row with a 50 MB response
// is a buffer grown by doubling past 64 MB. Here every row is encoded
// without its response and reasoning, which follow as JSON strings written
// in walChunk pieces. The result decodes (scanWAL) to the same walRecord as
// json.Marshal's; only the order of a row's keys differs.
type walEncoder struct {
	w   io.Writer
	err error
	tmp bytes.Buffer
	js  *json.Encoder
}

// walChunk is the piece of a long string encoded at a time.
const walChunk = 64 << 10

// walGroupHead is a walGroup without its rows, walRowHead an RLRow without
// its response and reasoning: the nil fields at depth 0 hide the embedded
// ones of the same JSON name and are left out (omitempty), so fields added
// to walGroup or RLRow are encoded without a change here.
type walGroupHead struct {
	*walGroup
	Rows *struct{} `json:"rows,omitempty"`
}

type walRowHead struct {
	*export.RLRow
	Response  *struct{} `json:"response,omitempty"`
	Reasoning *struct{} `json:"reasoning,omitempty"`
}

// record writes f's record to w; an error is w's first.
func (e *walEncoder) record(w io.Writer, f *Flush) error {
	e.w, e.err = w, nil
	defer func() {
		e.w = nil
		if e.tmp.Cap() > walBufMax {
			// A row with a large prompt grew it; it is not kept.
			e.tmp, e.js = bytes.Buffer{}, nil
		}
	}()
	if e.js == nil {
		e.js = json.NewEncoder(&e.tmp)
	}
	e.write(`{"groups":[`)
	for i := range f.Groups {
		if i > 0 {
			e.write(",")
		}
		o := &f.Groups[i]
		g := walGroup{Task: o.Task, Turn: o.Turn, More: o.More, Dropped: o.Dropped}
		e.object(walGroupHead{walGroup: &g})
		e.write(`,"rows":`)
		if o.Rows == nil {
			e.write("null")
		} else {
			e.write("[")
			for k := range o.Rows {
				if k > 0 {
					e.write(",")
				}
				e.row(&o.Rows[k])
			}
			e.write("]")
		}
		e.write("}")
		if e.err != nil {
			return e.err
		}
	}
	e.write(`],"state":`)
	e.value(&f.State)
	e.write("}")
	return e.err
}

func (e *walEncoder) row(r *export.RLRow) {
	e.object(walRowHead{RLRow: r})
	e.write(`,"response":`)
	e.str(r.Response)
	e.write(`,"reasoning":`)
	if r.Reasoning == nil {
		e.write("null")
	} else {
		e.str(*r.Reasoning)
	}
	e.write("}")
}

// object writes v's JSON object without its closing brace. v has at least
// one field, so what follows starts with a comma.
func (e *walEncoder) object(v any) {
	b := e.encode(v)
	if e.err == nil && (len(b) < 2 || b[len(b)-1] != '}' || b[len(b)-2] == '{') {
		e.err = errors.New("journal: unexpected encoding of a record's object")
	}
	if len(b) > 0 {
		e.writeBytes(b[:len(b)-1])
	}
}

func (e *walEncoder) value(v any) { e.writeBytes(e.encode(v)) }

// str writes s as a JSON string, a walChunk at a time. Pieces are cut
// before a byte that starts a UTF-8 sequence (or is invalid), so each piece
// encodes as it would within s (invalid bytes become U+FFFD either way).
func (e *walEncoder) str(s string) {
	e.write(`"`)
	for len(s) > 0 && e.err == nil {
		n := min(len(s), walChunk)
		for n < len(s) && n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		if n == 0 {
			n = min(len(s), walChunk)
		}
		b := e.encode(s[:n])
		if len(b) >= 2 {
			e.writeBytes(b[1 : len(b)-1])
		}
		s = s[n:]
	}
	e.write(`"`)
}

// encode returns v's JSON (valid until the next call).
func (e *walEncoder) encode(v any) []byte {
	if e.err != nil {
		return nil
	}
	e.tmp.Reset()
	if err := e.js.Encode(v); err != nil {
		e.err = err
		return nil
	}
	return bytes.TrimSuffix(e.tmp.Bytes(), []byte("\n"))
}

func (e *walEncoder) write(s string) {
	if e.err == nil {
		_, e.err = io.WriteString(e.w, s)
	}
}

func (e *walEncoder) writeBytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

var errRecordTooBig = errors.New("record over the in-memory limit")

// cappedWriter appends to b until b would pass max bytes.
type cappedWriter struct {
	b   *bytes.Buffer
	max int
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	if c.b.Len()+len(p) > c.max {
		return 0, errRecordTooBig
	}
	return c.b.Write(p)
}

// crcCounter measures what is written to it: length and CRC-32C.
type crcCounter struct {
	n   int64
	crc uint32
}

func (c *crcCounter) Write(p []byte) (int, error) {
	c.crc = crc32.Update(c.crc, walTable, p)
	c.n += int64(len(p))
	return len(p), nil
}
