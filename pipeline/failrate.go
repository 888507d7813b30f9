package pipeline

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/redraft/redraft/export"
)

// ErrTooManyFailures is wrapped by the error of a run whose samples failed
// more often than pipeline.max_failure_rate allows.
var ErrTooManyFailures = errors.New("too many failed samples")

// failureMinSamples is how many samples a run writes before its failure
// rate can stop it early: enough that a few failures at the start of a
// healthy run do not.
const failureMinSamples = 200

// failureBound watches the share of samples whose request failed for good.
// A dead or misconfigured endpoint makes every sample fail; without a bound
// such a run "succeeded" with a dataset of errors.
type failureBound struct {
	max          float64
	rows, failed int64
	// reasons counts this session's failures by the start of their error,
	// for the message (at most maxReasons kinds; the rest are "other").
	reasons map[string]int64
	// atEndOnly skips the early stop: a retry goes through every task, so
	// that it can replace the run it retries.
	atEndOnly bool
	// noRetry is why --retry-failed cannot redo this run's failed samples
	// (nil when it can): the error then says what to do instead.
	noRetry error
}

const maxReasons = 64

// add counts a group's rows.
func (b *failureBound) add(rows []export.RLRow) {
	for _, r := range rows {
		b.rows++
		if r.Error == nil {
			continue
		}
		b.failed++
		if b.reasons == nil {
			b.reasons = map[string]int64{}
		}
		key := reasonKind(*r.Error)
		if _, ok := b.reasons[key]; !ok && len(b.reasons) >= maxReasons {
			key = "other"
		}
		b.reasons[key]++
	}
}

// check returns an error wrapping ErrTooManyFailures when the failed share
// is over the bound: at the end of the run (final), or as soon as
// failureMinSamples are written.
func (b *failureBound) check(final bool) error {
	if b.rows == 0 || (!final && (b.atEndOnly || b.rows < failureMinSamples)) || float64(b.failed) <= b.max*float64(b.rows) {
		return nil
	}
	type kind struct {
		reason string
		n      int64
	}
	var kinds []kind
	for r, n := range b.reasons {
		kinds = append(kinds, kind{r, n})
	}
	sort.Slice(kinds, func(i, j int) bool {
		return kinds[i].n > kinds[j].n || kinds[i].n == kinds[j].n && kinds[i].reason < kinds[j].reason
	})
	var top []string
	for i, k := range kinds {
		if i == 3 {
			break
		}
		top = append(top, fmt.Sprintf("%d x %s", k.n, k.reason))
	}
	when := "at the end"
	if !final {
		when = "stopped early"
	}
	next := "fix the cause and rerun with --retry-failed to redo only the failed samples (see failures.jsonl)"
	if b.noRetry != nil {
		next = "fix the cause and rerun with --overwrite (see failures.jsonl); " + b.noRetry.Error()
	}
	return fmt.Errorf("%w: %d of %d samples (%.1f%%) failed, over pipeline.max_failure_rate %g (%s); commonest: %s. The rows are kept: %s",
		ErrTooManyFailures, b.failed, b.rows, 100*float64(b.failed)/float64(b.rows), b.max, when, strings.Join(top, "; "), next)
}

// reasonKind is the start of an error message with its counts and
// durations blanked ("gave up after N attempts and Nms waiting"), so that
// failures of one kind count together; HTTP statuses and URLs are kept
// ("HTTP 503 ... from http://10.0.0.7:8000/v1"): they say what failed.
func reasonKind(msg string) string {
	words := strings.Fields(msg)
	for i, w := range words {
		if strings.Contains(w, "://") || i > 0 && words[i-1] == "HTTP" {
			continue
		}
		words[i] = blankDigits(w)
	}
	out := strings.Join(words, " ")
	if len(out) > 120 {
		out = out[:120] + "..."
	}
	return out
}

// blankDigits replaces each run of digits in w with N.
func blankDigits(w string) string {
	var b strings.Builder
	digits := false
	for _, r := range w {
		if r >= '0' && r <= '9' {
			if !digits {
				b.WriteByte('N')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteRune(r)
	}
	return b.String()
}
