package splice

import (
	"context"
	"encoding/binary"
	orderedpkg "github.com/redraft/redraft/internal/ordered"
	"hash/fnv"
	"strings"
	"unicode"

	"github.com/redraft/redraft/pipeline"
)

// Step splitting modes for model-written solutions.
const (
	// StepsLines makes every non-blank line a step (GSM8K-style solutions,
	// "Step 1: ..." lists).
	StepsLines = "lines"
	// StepsParagraphs makes every run of non-blank lines a step (solutions
	// that separate steps with blank lines).
	StepsParagraphs = "paragraphs"
)

// span is a step's [start, end) byte range in its solution, without the
// whitespace around it.
type span struct{ start, end int }

// splitSteps returns the steps of text, as byte spans into it.
func splitSteps(text, mode string) []span {
	var out []span
	pos := 0
	cur := span{-1, -1}
	flush := func() {
		if cur.start >= 0 {
			out = append(out, cur)
			cur = span{-1, -1}
		}
	}
	for pos <= len(text) {
		nl := strings.IndexByte(text[pos:], '\n')
		end := len(text)
		if nl >= 0 {
			end = pos + nl
		}
		line := text[pos:end]
		trimmed := strings.TrimFunc(line, unicode.IsSpace)
		if trimmed == "" {
			flush()
		} else {
			lead := strings.Index(line, trimmed)
			s := span{pos + lead, pos + lead + len(trimmed)}
			if mode == StepsParagraphs && cur.start >= 0 {
				cur.end = s.end
			} else {
				flush()
				cur = s
			}
		}
		if nl < 0 {
			break
		}
		pos = end + 1
	}
	flush()
	return out
}

// pick chooses an entry of pool for a trajectory id, the same on every run
// with the same seed.
func pick(pool []string, seed int64, id string) int {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(id))
	return int(h.Sum64() % uint64(len(pool)))
}

// builder assembles an assistant message from segments. A separator between
// two segments is trained unless both of its neighbours are masked, so that
// a masked region is exactly the text of its segments and the separators
// inside it.
type builder struct{ segs []pipeline.Segment }

// add appends text after sep (ignored for the first segment).
func (b *builder) add(sep, text, role string, trainable bool) {
	if len(b.segs) > 0 && sep != "" {
		prev := b.segs[len(b.segs)-1]
		b.segs = append(b.segs, pipeline.Segment{Text: sep, Role: pipeline.SegSeparator, Trainable: trainable || prev.Trainable})
	}
	b.segs = append(b.segs, pipeline.Segment{Text: text, Role: role, Trainable: trainable})
}

// ordered is ordered.Map: work on up to n items at a time, results emitted
// in input order.
func ordered[I, R any](ctx context.Context, n int, next func() (I, bool, error), work func(context.Context, I) R, emit func(R) error) error {
	return orderedpkg.Map(ctx, n, next, work, emit)
}
