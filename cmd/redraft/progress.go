package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/redraft/redraft/pipeline"
)

// reporter shows a job's progress from its pipeline.Progress, every
// interval from the start: a bar on a terminal, a log line otherwise. Rows
// are written in input order, so it leads with what moves while the first
// groups wait on their slowest sample: requests done, failed and in flight,
// and tokens per second; then tasks (of the input's count, when known),
// rows written and the time left.
type reporter struct {
	prog  *pipeline.Progress
	every time.Duration
	bar   *progressbar.ProgressBar
	log   io.Writer
	heap  *heapProfiler
	// first is the counts when the reporter started (a resumed run's
	// earlier sessions), so that rates are this session's.
	first pipeline.Snapshot
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex // guards heap
}

func newReporter(mode string, stderr io.Writer, prog *pipeline.Progress, every time.Duration) (*reporter, error) {
	r := &reporter{prog: prog, every: every, stop: make(chan struct{})}
	if mode == "auto" {
		mode = "log"
		w := stderr
		if lw, ok := w.(*lockedWriter); ok {
			w = lw.w
		}
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				mode = "bar"
			}
		}
	}
	switch mode {
	case "bar":
		r.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("tasks"),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	case "log":
		r.log = stderr
	case "off":
		return r, nil
	default:
		return nil, fmt.Errorf("--progress: %q is not auto, bar, log or off", mode)
	}
	r.first = prog.Snapshot()
	r.wg.Add(1)
	go r.loop()
	return r, nil
}

// loop shows the progress every interval until done.
func (r *reporter) loop() {
	defer r.wg.Done()
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.show(r.prog.Snapshot())
		}
	}
}

func (r *reporter) show(s pipeline.Snapshot) {
	line := r.line(s)
	if r.bar != nil {
		if s.TasksTotal > 0 && r.bar.GetMax64() != s.TasksTotal {
			r.bar.ChangeMax64(s.TasksTotal)
		}
		r.bar.Describe(line)
		r.bar.Set64(s.Tasks)
		return
	}
	fmt.Fprintf(r.log, "progress: %s\n", line)
}

// line describes a snapshot: requests, tokens per second, tasks, rows and
// the time left.
func (r *reporter) line(s pipeline.Snapshot) string {
	el := s.At.Sub(r.first.At).Seconds()
	if el <= 0 {
		el = 1e-9
	}
	tokRate := float64(s.CompletionTokens-r.first.CompletionTokens) / el
	out := fmt.Sprintf("requests %d done, %d failed, %d in flight; %.0f tokens/s; ", s.RequestsDone, s.RequestsFailed, s.InFlight, tokRate)
	if s.TasksTotal > 0 {
		out += fmt.Sprintf("tasks %d/%d (%.1f%%)", s.Tasks, s.TasksTotal, 100*float64(s.Tasks)/float64(s.TasksTotal))
	} else {
		out += fmt.Sprintf("tasks %d", s.Tasks)
	}
	out += fmt.Sprintf(", rows %d written", s.Rows)
	if done := s.Tasks - r.first.Tasks; s.TasksTotal > s.Tasks && done > 0 {
		left := time.Duration(float64(s.TasksTotal-s.Tasks) / (float64(done) / el) * float64(time.Second))
		out += fmt.Sprintf(", ETA %s", left.Round(time.Second))
	}
	return out
}

// group is the job's OnGroup: it keeps the heap profile's schedule.
func (r *reporter) group(written int64, _ int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heap.group(written)
}

// done stops the display with a last update (the counts at the end).
func (r *reporter) done() {
	if r.log == nil && r.bar == nil {
		return
	}
	close(r.stop)
	r.wg.Wait()
	r.show(r.prog.Snapshot())
	if r.bar != nil {
		r.bar.Finish()
	}
}
