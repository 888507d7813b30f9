package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// startProfiles starts a CPU profile into path (none when path is empty) and
// returns the function that stops it.
func startProfiles(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// heapProfiler rewrites a heap profile every `every` groups while a run is
// under way, so that the file shows the pipeline's live memory late in the
// run rather than after its state was released. The file is replaced
// atomically; a failure is reported once and ends the profiling.
type heapProfiler struct {
	path  string
	every int64
	next  int64
	err   error
}

func (h *heapProfiler) group(written int64) {
	if h == nil || h.err != nil || written < h.next {
		return
	}
	h.next = written + h.every
	h.err = h.write()
}

func (h *heapProfiler) write() error {
	tmp, err := os.CreateTemp(filepath.Dir(h.path), ".memprofile-*")
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(tmp, 0); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("--memprofile: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--memprofile: %w", err)
	}
	if err := os.Rename(tmp.Name(), h.path); err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	return nil
}
