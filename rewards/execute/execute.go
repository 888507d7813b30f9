package execute

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrUnavailable is returned (wrapped) by New when the sandbox cannot be
// used on this machine: bwrap is missing or cannot create namespaces.
var ErrUnavailable = errors.New("sandbox unavailable")

// Limits bound one execution. A zero field takes its default (DefaultLimits).
type Limits struct {
	// Wall is the wall-clock limit; at it the whole sandbox is killed.
	Wall time.Duration
	// CPU is RLIMIT_CPU, in whole seconds (rounded up).
	CPU time.Duration
	// Memory is RLIMIT_AS, the address space of each process, in bytes.
	Memory int64
	// Procs is RLIMIT_NPROC: processes of the sandbox's user at once.
	Procs int
	// FileSize is RLIMIT_FSIZE, the largest file a process may write.
	FileSize int64
	// OpenFiles is RLIMIT_NOFILE.
	OpenFiles int
	// Scratch is the size of the tmpfs that is the only writable path.
	Scratch int64
	// Output is how many bytes of each of stdout and stderr are kept.
	Output int
	// OutputKill is the total output (stdout and stderr together) at which
	// the sandbox is killed (reason output_limit).
	OutputKill int64
	// Report is how many bytes of the report channel are kept.
	Report int
}

// DefaultLimits are the limits a zero Limits field takes.
var DefaultLimits = Limits{
	Wall:       10 * time.Second,
	CPU:        10 * time.Second,
	Memory:     1 << 30,
	Procs:      64,
	FileSize:   16 << 20,
	OpenFiles:  256,
	Scratch:    64 << 20,
	Output:     64 << 10,
	OutputKill: 16 << 20,
	Report:     4 << 20,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.Wall <= 0 {
		l.Wall = d.Wall
	}
	if l.CPU <= 0 {
		l.CPU = d.CPU
	}
	if l.Memory <= 0 {
		l.Memory = d.Memory
	}
	if l.Procs <= 0 {
		l.Procs = d.Procs
	}
	if l.FileSize <= 0 {
		l.FileSize = d.FileSize
	}
	if l.OpenFiles <= 0 {
		l.OpenFiles = d.OpenFiles
	}
	if l.Scratch <= 0 {
		l.Scratch = d.Scratch
	}
	if l.Output <= 0 {
		l.Output = d.Output
	}
	if l.OutputKill <= 0 {
		l.OutputKill = d.OutputKill
	}
	if l.Report <= 0 {
		l.Report = d.Report
	}
	return l
}

// Options configure a Sandbox.
type Options struct {
	// Limits are the default limits of every execution.
	Limits Limits
	// Slots is how many executions run at once (CPU-bound work); 0 means
	// runtime.NumCPU().
	Slots int
	// Bwrap is the bubblewrap binary; "" looks up "bwrap" in PATH.
	Bwrap string
	// ReadOnly are further host paths made visible read-only at the same
	// place (an interpreter outside /usr, for example).
	ReadOnly []string
	// UnsafeNoSandbox runs programs without isolation: no namespaces, the
	// host's files and network are reachable. Only the rlimits, the empty
	// environment, the scratch directory as working directory, the wall
	// clock and the output caps remain. Never use it on untrusted code.
	UnsafeNoSandbox bool
}

// File is a file placed in the scratch directory before the program starts.
type File struct {
	Name string // a plain name, no slashes
	Data []byte
}

// Spec is one program to run.
type Spec struct {
	// Argv is the command; Argv[0] is an absolute path inside the sandbox.
	Argv []string
	// Files are written into the scratch directory (the working directory).
	Files []File
	// Stdin is the program's standard input (empty when nil).
	Stdin []byte
	// Limits override the Sandbox's limits field by field (zero: keep).
	Limits Limits
}

// Result is what one execution did.
type Result struct {
	// Reason is "ok" when the program exited 0, otherwise one of: "exit"
	// (a non-zero exit status), "signal" (killed by a signal not explained
	// below), "timeout" (the wall clock), "cpu_time" (SIGXCPU), "file_size"
	// (SIGXFSZ), "output_limit" (OutputKill reached), "canceled" (the
	// context ended before the time limit).
	Reason   string
	ExitCode int    // the exit status; -1 when killed by a signal
	Signal   string // the signal's name when killed by one
	Stdout   []byte
	Stderr   []byte
	// StdoutBytes and StderrBytes count everything the program wrote;
	// StdoutTruncated and StderrTruncated say that not all of it is kept.
	StdoutBytes, StderrBytes         int64
	StdoutTruncated, StderrTruncated bool
	// Report is what the program wrote to file descriptor 3 (ReportFD).
	Report          []byte
	ReportTruncated bool
	// Wall is the time from start to exit; Queued the time spent waiting
	// for a slot.
	Wall, Queued time.Duration
	// Sandboxed is false only under UnsafeNoSandbox.
	Sandboxed bool
}

// ReportFD is the file descriptor on which a program may write a report
// that comes back in Result.Report, apart from its stdout and stderr.
const ReportFD = 3

// Sandbox runs programs under bubblewrap. It is safe for concurrent use.
type Sandbox struct {
	opts  Options
	bwrap string
	slots chan struct{}
	uid   int // the host uid the sandbox runs as (65534 when redraft is root)
}

// nobody is the uid and gid the sandbox runs as when redraft runs as root:
// root is exempt from RLIMIT_NPROC, so a sandbox of root's could fork
// without bound.
const nobody = 65534

// New checks that the sandbox works on this machine (it runs a probe
// program) and returns it. Without bwrap, or when it cannot create its
// namespaces, it returns an error wrapping ErrUnavailable, unless
// opts.UnsafeNoSandbox is set.
func New(opts Options) (*Sandbox, error) {
	s := &Sandbox{opts: opts, uid: os.Geteuid()}
	s.opts.Limits = opts.Limits.withDefaults()
	n := opts.Slots
	if n <= 0 {
		n = runtime.NumCPU()
	}
	s.slots = make(chan struct{}, n)
	if s.uid == 0 {
		s.uid = nobody
	}
	if opts.UnsafeNoSandbox {
		return s, nil
	}
	b := opts.Bwrap
	if b == "" {
		b = "bwrap"
	}
	p, err := exec.LookPath(b)
	if err != nil {
		return nil, fmt.Errorf("%w: bubblewrap (%s) not found: install it (Debian: apt-get install bubblewrap) or, only for trusted code, pass the unsafe no-sandbox opt-out", ErrUnavailable, b)
	}
	s.bwrap = p
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := s.Run(ctx, Spec{Argv: []string{"/bin/sh", "-c", "exit 0"}, Limits: Limits{Wall: 20 * time.Second}})
	if err != nil || r.Reason != "ok" {
		msg := ""
		if err != nil {
			msg = err.Error()
		} else {
			msg = fmt.Sprintf("probe ended %s (exit %d): %s", r.Reason, r.ExitCode, strings.TrimSpace(string(r.Stderr)))
		}
		return nil, fmt.Errorf("%w: %s cannot create its namespaces here: %s", ErrUnavailable, p, msg)
	}
	return s, nil
}

// Limits returns the sandbox's default limits.
func (s *Sandbox) Limits() Limits { return s.opts.Limits }

// Slots returns how many executions run at once.
func (s *Sandbox) Slots() int { return cap(s.slots) }

// Sandboxed reports whether programs run isolated (false only under
// UnsafeNoSandbox).
func (s *Sandbox) Sandboxed() bool { return !s.opts.UnsafeNoSandbox }

func merge(base, over Limits) Limits {
	if over.Wall > 0 {
		base.Wall = over.Wall
	}
	if over.CPU > 0 {
		base.CPU = over.CPU
	}
	if over.Memory > 0 {
		base.Memory = over.Memory
	}
	if over.Procs > 0 {
		base.Procs = over.Procs
	}
	if over.FileSize > 0 {
		base.FileSize = over.FileSize
	}
	if over.OpenFiles > 0 {
		base.OpenFiles = over.OpenFiles
	}
	if over.Scratch > 0 {
		base.Scratch = over.Scratch
	}
	if over.Output > 0 {
		base.Output = over.Output
	}
	if over.OutputKill > 0 {
		base.OutputKill = over.OutputKill
	}
	if over.Report > 0 {
		base.Report = over.Report
	}
	return base
}

// wrapper sets the rlimits inside the sandbox and execs the program. dash's
// ulimit takes one limit per call; -v is in KiB and -f in 512-byte blocks.
func wrapper(l Limits) string {
	cpu := int64((l.CPU + time.Second - 1) / time.Second)
	return fmt.Sprintf("ulimit -c 0; ulimit -S -t %d; ulimit -H -t %d; ulimit -v %d; ulimit -p %d; ulimit -f %d; ulimit -n %d; exec \"$@\"",
		cpu, cpu+1, l.Memory/1024, l.Procs, (l.FileSize+511)/512, l.OpenFiles)
}

// rootLinks are the top-level directories a program may need besides /usr:
// on a merged-/usr system they are symlinks into /usr and are recreated as
// such; otherwise they are bound read-only.
var rootLinks = []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

func (s *Sandbox) bwrapArgs(l Limits, files []File) []string {
	a := []string{
		"--unshare-all", "--unshare-net", "--die-with-parent", "--new-session", "--clearenv",
		"--ro-bind", "/usr", "/usr",
	}
	for _, d := range rootLinks {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			if t, err := os.Readlink(d); err == nil {
				a = append(a, "--symlink", t, d)
			}
		case fi.IsDir():
			a = append(a, "--ro-bind", d, d)
		}
	}
	for _, p := range s.opts.ReadOnly {
		a = append(a, "--ro-bind", p, p)
	}
	a = append(a, "--proc", "/proc", "--dev", "/dev",
		"--size", strconv.FormatInt(l.Scratch, 10), "--tmpfs", "/tmp",
		"--chdir", "/tmp",
		"--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
		"--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1")
	for i, f := range files {
		a = append(a, "--file", strconv.Itoa(ReportFD+1+i), "/tmp/"+f.Name)
	}
	// bwrap's root is a tmpfs of its own: read-only, so that /tmp (with its
	// size) is the only place a program can write to.
	return append(a, "--remount-ro", "/")
}

// Run runs one program and waits for it. The error is non-nil only when the
// program could not be started (the context ended while waiting for a
// slot, a bad Spec, a failure to fork); every way a started program ends is
// a Result with its Reason.
func (s *Sandbox) Run(ctx context.Context, spec Spec) (Result, error) {
	if len(spec.Argv) == 0 {
		return Result{}, errors.New("execute: empty Argv")
	}
	for _, f := range spec.Files {
		if f.Name == "" || strings.ContainsAny(f.Name, "/\x00") || f.Name == "." || f.Name == ".." {
			return Result{}, fmt.Errorf("execute: bad file name %q", f.Name)
		}
	}
	l := merge(s.opts.Limits, spec.Limits)
	queued := time.Now()
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	defer func() { <-s.slots }()
	res := Result{Queued: time.Since(queued), Sandboxed: !s.opts.UnsafeNoSandbox}

	var cmd *exec.Cmd
	inner := append([]string{"/bin/sh", "-c", wrapper(l), "sh"}, spec.Argv...)
	var scratch string
	if s.opts.UnsafeNoSandbox {
		d, err := os.MkdirTemp("", "redraft-unsafe-")
		if err != nil {
			return res, err
		}
		scratch = d
		defer os.RemoveAll(scratch)
		for _, f := range spec.Files {
			if err := os.WriteFile(filepath.Join(d, f.Name), f.Data, 0o644); err != nil {
				return res, err
			}
		}
		if s.uid == nobody {
			_ = os.Chmod(d, 0o777)
		}
		cmd = exec.Command(inner[0], inner[1:]...)
		cmd.Dir = d
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + d, "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"}
	} else {
		args := append(s.bwrapArgs(l, spec.Files), inner...)
		cmd = exec.Command(s.bwrap, args...)
		cmd.Dir = "/"
		cmd.Env = []string{}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}
	}
	cmd.Stdin = bytes.NewReader(spec.Stdin)

	// Pipes: stdout, stderr, the report channel and one per file.
	var closeAfterStart []*os.File
	var closeAll []*os.File
	defer func() {
		for _, f := range closeAll {
			f.Close()
		}
	}()
	pipe := func() (*os.File, *os.File, error) {
		r, w, err := os.Pipe()
		if err == nil {
			closeAll = append(closeAll, r, w)
		}
		return r, w, err
	}
	outR, outW, err := pipe()
	if err != nil {
		return res, err
	}
	errR, errW, err := pipe()
	if err != nil {
		return res, err
	}
	repR, repW, err := pipe()
	if err != nil {
		return res, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.ExtraFiles = []*os.File{repW}
	closeAfterStart = append(closeAfterStart, outW, errW, repW)
	var fileWriters []*os.File
	if !s.opts.UnsafeNoSandbox {
		for range spec.Files {
			r, w, err := pipe()
			if err != nil {
				return res, err
			}
			cmd.ExtraFiles = append(cmd.ExtraFiles, r)
			closeAfterStart = append(closeAfterStart, r)
			fileWriters = append(fileWriters, w)
		}
	}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("execute: start: %w", err)
	}
	for _, f := range closeAfterStart {
		f.Close()
	}
	pgid := cmd.Process.Pid
	var killOnce sync.Once
	var killReason string
	var mu sync.Mutex
	kill := func(reason string) {
		killOnce.Do(func() {
			mu.Lock()
			killReason = reason
			mu.Unlock()
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		})
	}
	for i, w := range fileWriters {
		go func(w *os.File, data []byte) {
			_, _ = w.Write(data)
			w.Close()
		}(w, spec.Files[i].Data)
	}

	var total int64
	var totalMu sync.Mutex
	capture := func(r io.Reader, keep int, buf *[]byte, n *int64, trunc *bool, counts bool) {
		b := make([]byte, 32<<10)
		for {
			k, err := r.Read(b)
			if k > 0 {
				*n += int64(k)
				if room := keep - len(*buf); room > 0 {
					*buf = append(*buf, b[:min(k, room)]...)
				}
				if *n > int64(keep) {
					*trunc = true
				}
				if counts {
					totalMu.Lock()
					total += int64(k)
					over := total > l.OutputKill
					totalMu.Unlock()
					if over {
						kill("output_limit")
					}
				}
			}
			if err != nil {
				return
			}
		}
	}
	var wg sync.WaitGroup
	var repN int64
	wg.Add(3)
	go func() {
		defer wg.Done()
		capture(outR, l.Output, &res.Stdout, &res.StdoutBytes, &res.StdoutTruncated, true)
	}()
	go func() {
		defer wg.Done()
		capture(errR, l.Output, &res.Stderr, &res.StderrBytes, &res.StderrTruncated, true)
	}()
	go func() { defer wg.Done(); capture(repR, l.Report, &res.Report, &repN, &res.ReportTruncated, false) }()

	timer := time.AfterFunc(l.Wall, func() { kill("timeout") })
	stop := context.AfterFunc(ctx, func() { kill("canceled") })
	waitErr := cmd.Wait()
	res.Wall = time.Since(start)
	timer.Stop()
	stop()
	// The sandbox's processes die with its PID namespace; in the unsafe
	// mode, kill whatever is left in the process group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		// A descendant outside the process group still holds a pipe.
		outR.Close()
		errR.Close()
		repR.Close()
		<-done
	}

	res.ExitCode = 0
	if waitErr != nil {
		var ee *exec.ExitError
		if !errors.As(waitErr, &ee) {
			return res, fmt.Errorf("execute: wait: %w", waitErr)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled():
			res.ExitCode = -1
			res.Signal = signame(ws.Signal())
		default:
			res.ExitCode = ws.ExitStatus()
		}
	}
	// bwrap (and sh's exec) report a program killed by signal N as exit
	// status 128+N.
	if res.Signal == "" && res.ExitCode > 128 && res.ExitCode < 128+65 {
		res.Signal = signame(syscall.Signal(res.ExitCode - 128))
	}
	mu.Lock()
	kr := killReason
	mu.Unlock()
	switch {
	case kr != "":
		res.Reason = kr
	case res.Signal == "SIGXCPU":
		res.Reason = "cpu_time"
	case res.Signal == "SIGXFSZ":
		res.Reason = "file_size"
	case res.Signal != "":
		res.Reason = "signal"
	case res.ExitCode != 0:
		res.Reason = "exit"
	default:
		res.Reason = "ok"
	}
	return res, nil
}

func signame(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	case syscall.SIGXCPU:
		return "SIGXCPU"
	case syscall.SIGXFSZ:
		return "SIGXFSZ"
	case syscall.SIGBUS:
		return "SIGBUS"
	case syscall.SIGPIPE:
		return "SIGPIPE"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return "signal " + strconv.Itoa(int(s))
}
