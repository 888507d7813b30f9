package plugin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/redraft/redraft/internal/redact"
)

// maxLineBytes bounds one answer line; a longer one fails its request.
const maxLineBytes = 16 << 20

// stderrKeep is how much of a plug-in's stderr is kept (the last bytes);
// reasons quote its last stderrLines lines, at most stderrQuote bytes.
const (
	stderrKeep  = 64 << 10
	stderrLines = 5
	stderrQuote = 1000
)

// reapGrace is how long the pipes may stay open after a plug-in exited
// (a child of its still writing) before they are closed.
const reapGrace = 2 * time.Second

// procTransport runs Config.Concurrency plug-in processes. Calls wait on
// the unbuffered queue until a process has room in its window.
type procTransport struct {
	cfg     Config
	env     []string
	stats   *counters
	hello   Hello
	timeout time.Duration

	queue  chan *call
	ctx    context.Context // ended by close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu           sync.Mutex
	live         int           // processes not given up
	broken       chan struct{} // closed when every process was given up
	brokenReason string
}

func openProc(ctx context.Context, cfg Config, stats *counters) (*procTransport, error) {
	t := &procTransport{
		cfg: cfg, env: childEnv(os.Environ(), cfg.Env), stats: stats, timeout: time.Duration(cfg.Timeout),
		queue: make(chan *call), broken: make(chan struct{}), live: cfg.Concurrency,
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	insts := make([]*instance, cfg.Concurrency)
	errs := make([]error, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			insts[i], errs[i] = t.start(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			continue
		}
		t.cancel()
		for _, inst := range insts {
			if inst != nil {
				inst.shutdown()
				inst.finish()
			}
		}
		return nil, err
	}
	t.hello = insts[0].hello
	for _, inst := range insts {
		t.wg.Add(1)
		go t.supervise(inst)
	}
	return t, nil
}

func (t *procTransport) verify(ctx context.Context, calls []*call) {
	for _, k := range calls {
		if !k.finished() {
			t.send(ctx, k)
		}
	}
	for _, k := range calls {
		select {
		case <-k.done:
		case <-ctx.Done():
			k.finish(canceled(ctx))
		}
	}
}

// send hands k to a process, or finishes it when that cannot be.
func (t *procTransport) send(ctx context.Context, k *call) {
	if t.ended(ctx, k) {
		return
	}
	select {
	case t.queue <- k:
	case <-k.done:
	case <-ctx.Done():
		k.finish(canceled(ctx))
	case <-t.ctx.Done():
		k.finish(failed(reasonClosed))
	case <-t.broken:
		k.finish(failed("%s", t.unavailable()))
	}
}

// ended finishes k when ctx ended, the client is closed or no process is
// left.
func (t *procTransport) ended(ctx context.Context, k *call) bool {
	switch {
	case ctx.Err() != nil:
		k.finish(canceled(ctx))
	case t.ctx.Err() != nil:
		k.finish(failed(reasonClosed))
	default:
		select {
		case <-t.broken:
			k.finish(failed("%s", t.unavailable()))
		default:
			return false
		}
	}
	return true
}

// requeue sends again a call that a process took as it was exiting.
func (t *procTransport) requeue(k *call) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.send(context.Background(), k)
	}()
}

func (t *procTransport) unavailable() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.brokenReason
}

func (t *procTransport) close() error {
	t.cancel()
	t.wg.Wait()
	return nil
}

// supervise runs one process slot: it waits for its process to exit and
// starts it again, with backoff, until Restarts exits in a row came without
// an answer, or the client closes.
func (t *procTransport) supervise(inst *instance) {
	defer t.wg.Done()
	fails := 0
	for {
		select {
		case <-inst.exited:
		case <-t.ctx.Done():
			inst.shutdown()
			inst.finish()
			return
		}
		reason := inst.finish()
		if inst.answeredAny() {
			fails = 0
		}
		for {
			if t.ctx.Err() != nil {
				return
			}
			fails++
			if t.cfg.Restarts < 0 || fails > t.cfg.Restarts {
				t.giveUp(reason)
				return
			}
			wait := backoffInitial << min(fails-1, 16)
			if wait > backoffMax {
				wait = backoffMax
			}
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-t.ctx.Done():
				timer.Stop()
				return
			}
			next, err := t.start(t.ctx)
			if err != nil {
				reason = err.Error()
				continue
			}
			t.stats.restarts.Add(1)
			inst = next
			break
		}
	}
}

func (t *procTransport) giveUp(reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.live--
	if t.live == 0 {
		n := "not restarted"
		if t.cfg.Restarts > 0 {
			n = fmt.Sprintf("not restarted after %d restarts in a row without an answer", t.cfg.Restarts)
		}
		t.brokenReason = fmt.Sprintf("verifier unavailable (%s): %s", n, reason)
		close(t.broken)
	}
}

// instance is one run of the plug-in's process.
type instance struct {
	t      *procTransport
	cmd    *exec.Cmd
	stdin  *os.File
	stdout *os.File
	stderr *tail
	// stderrFile is the read end of stderr, read into stderr.
	stderrFile *os.File
	hello      Hello
	sem        chan struct{} // the window: one token per outstanding request
	hs         chan []byte   // the first line

	mu         sync.Mutex
	pending    map[string]*pending
	dead       bool // finish ran: its requests were failed
	doomed     bool // being killed: it takes no new request
	lastAnswer time.Time
	answered   int
	stray      int
	lastStray  string
	killNote   string

	status     string        // the exit status, set before exited closes
	exited     chan struct{} // the process was waited for
	stdoutDone chan struct{}
	stderrDone chan struct{}
	gone       chan struct{} // the instance is over: the writer stops
	writerDone chan struct{}
}

type pending struct {
	call  *call
	sent  time.Time
	timer *time.Timer
}

// start runs the command and waits for its handshake.
func (t *procTransport) start(ctx context.Context) (*instance, error) {
	inst := &instance{
		t: t, stderr: &tail{}, sem: make(chan struct{}, t.cfg.Batch), hs: make(chan []byte, 1),
		pending: map[string]*pending{}, exited: make(chan struct{}), stdoutDone: make(chan struct{}),
		stderrDone: make(chan struct{}), gone: make(chan struct{}), writerDone: make(chan struct{}),
	}
	var files [6]*os.File // stdin r/w, stdout r/w, stderr r/w
	for i := 0; i < 6; i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			closeFiles(files[:i])
			return nil, fmt.Errorf("verifier: %w", err)
		}
		files[i], files[i+1] = r, w
	}
	cmd := exec.Command(t.cfg.Command[0], t.cfg.Command[1:]...)
	cmd.Env, cmd.Dir = t.env, t.cfg.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = files[0], files[3], files[5]
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		closeFiles(files[:])
		return nil, fmt.Errorf("verifier %q did not start: %w", t.cfg.Command[0], err)
	}
	closeFiles([]*os.File{files[0], files[3], files[5]})
	inst.cmd, inst.stdin, inst.stdout, inst.stderrFile = cmd, files[1], files[2], files[4]
	go inst.readStderr()
	go inst.readStdout()
	go func() {
		inst.status = exitStatus(cmd.Wait())
		close(inst.exited)
	}()

	fail := func(format string, args ...any) (*instance, error) {
		inst.kill("")
		<-inst.exited
		inst.finish()
		return nil, fmt.Errorf("verifier %q: handshake: %s; stderr: %s", t.cfg.Command[0], fmt.Sprintf(format, args...), inst.stderr.quote())
	}
	timer := time.NewTimer(time.Duration(t.cfg.StartTimeout))
	defer timer.Stop()
	var line []byte
	select {
	case line = <-inst.hs:
	case <-inst.stdoutDone:
		select {
		case line = <-inst.hs:
		default:
			<-inst.exited
			return fail("it exited (%s) before its first line", inst.status)
		}
	case <-timer.C:
		return fail("no first line within %s", seconds(time.Duration(t.cfg.StartTimeout)))
	case <-ctx.Done():
		return fail("canceled: %v", context.Cause(ctx))
	}
	var h Hello
	if err := json.Unmarshal(line, &h); err != nil || h.Protocol == "" {
		return fail(`the first line is not {"protocol": %q, ...}: %s`, Protocol, snippet(line, 200))
	}
	if h.Protocol != Protocol {
		return fail("it speaks %q, redraft speaks %q", h.Protocol, Protocol)
	}
	inst.hello = h
	go inst.write()
	return inst, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	return err.Error()
}

// write takes calls from the queue while the window has room and writes
// them to the plug-in's stdin.
func (inst *instance) write() {
	defer close(inst.writerDone)
	t := inst.t
	for {
		select {
		case inst.sem <- struct{}{}:
		case <-inst.gone:
			return
		case <-t.ctx.Done():
			return
		}
		var k *call
		select {
		case k = <-t.queue:
		case <-inst.gone:
			return
		case <-t.ctx.Done():
			return
		}
		if k.finished() {
			<-inst.sem
			continue
		}
		inst.mu.Lock()
		if inst.dead || inst.doomed {
			inst.mu.Unlock()
			<-inst.sem
			t.requeue(k)
			return
		}
		p := &pending{call: k, sent: time.Now()}
		inst.pending[k.id] = p
		p.timer = time.AfterFunc(t.timeout, func() { inst.expire(k.id, p) })
		inst.mu.Unlock()
		if _, err := inst.stdin.Write(k.line); err != nil {
			// The request did not reach the plug-in: it goes to the
			// next process, unless the client is closing.
			inst.mu.Lock()
			unsent := inst.pending[k.id] == p
			if unsent {
				delete(inst.pending, k.id)
			}
			inst.mu.Unlock()
			if unsent {
				p.timer.Stop()
				<-inst.sem
				t.requeue(k)
			}
			if t.ctx.Err() == nil { // not Close closing stdin
				inst.kill(fmt.Sprintf("writing to its stdin failed: %v", err))
			}
			return
		}
	}
}

// readStdout hands the first line to the handshake and every other to
// handle.
func (inst *instance) readStdout() {
	defer close(inst.stdoutDone)
	r := bufio.NewReaderSize(inst.stdout, 64<<10)
	first := true
	for {
		line, long, err := readLine(r, maxLineBytes)
		if len(line) > 0 || long {
			if first {
				first = false
				inst.hs <- line
			} else {
				inst.handle(line, long)
			}
		}
		if err != nil {
			return
		}
	}
}

// readLine reads one line without its end; a line longer than max is cut
// to max bytes (long is true) and the rest is skipped.
func readLine(r *bufio.Reader, max int) (line []byte, long bool, err error) {
	for {
		frag, err := r.ReadSlice('\n')
		if !long {
			if room := max - len(line); len(frag) > room {
				line, long = append(line, frag[:room]...), true
			} else {
				line = append(line, frag...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		line = []byte(strings.TrimRight(string(line), "\r\n"))
		return line, long, err
	}
}

// handle gives an answer line to the request it names.
func (inst *instance) handle(line []byte, long bool) {
	var (
		id  string
		has bool
		res Result
	)
	if long {
		id, has = salvageID(line)
		res = failed("answer line longer than %d bytes", maxLineBytes)
	} else {
		id, has, res = decodeAnswer(line)
	}
	inst.mu.Lock()
	p := inst.pending[id]
	if !has || p == nil {
		q := snippet(line, 200)
		inst.stray++
		inst.lastStray = q
		inst.mu.Unlock()
		inst.t.stats.strayLine(q)
		return
	}
	delete(inst.pending, id)
	inst.lastAnswer = time.Now()
	inst.answered++
	inst.mu.Unlock()
	p.timer.Stop()
	<-inst.sem
	p.call.finish(res)
}

// expire ends a request that got no answer in time. A process that
// answered nothing since the request was written is stuck: it is killed.
func (inst *instance) expire(id string, p *pending) {
	inst.mu.Lock()
	if inst.pending[id] != p {
		inst.mu.Unlock()
		return
	}
	delete(inst.pending, id)
	stuck := !inst.lastAnswer.After(p.sent)
	more := ""
	if inst.stray > 0 {
		more = fmt.Sprintf("; the verifier wrote %d line(s) that answered no request, the last: %s", inst.stray, inst.lastStray)
	}
	inst.mu.Unlock()
	<-inst.sem
	if stuck {
		d := seconds(inst.t.timeout)
		more += "; it answered nothing in " + d + " and was killed"
		inst.kill("killed after answering nothing for " + d)
	}
	p.call.finish(timeoutResult(inst.t.timeout, more))
}

// kill ends the process and its children; note says why, for the reason
// the requests in flight get.
func (inst *instance) kill(note string) {
	select {
	case <-inst.exited:
		return // it ended on its own
	default:
	}
	inst.mu.Lock()
	inst.doomed = true
	if inst.killNote == "" {
		inst.killNote = note
	}
	inst.mu.Unlock()
	killProcessGroup(inst.cmd)
}

// shutdown closes a process as Close does: its requests get "verifier
// closed", its stdin is closed, and it is killed when it has not exited
// within closeGrace.
func (inst *instance) shutdown() {
	inst.mu.Lock()
	pend := inst.pending
	inst.pending = map[string]*pending{}
	inst.mu.Unlock()
	for _, p := range pend {
		p.timer.Stop()
		p.call.finish(failed(reasonClosed))
	}
	inst.stdin.Close()
	timer := time.NewTimer(closeGrace)
	defer timer.Stop()
	select {
	case <-inst.exited:
	case <-timer.C:
		inst.kill("")
		<-inst.exited
	}
}

// finish cleans up after the process exited: it kills what is left of its
// process group, drains its output, fails its outstanding requests with
// the exit reason (which it returns), and stops the writer.
func (inst *instance) finish() string {
	<-inst.exited
	killProcessGroup(inst.cmd)
	drain(inst.stdoutDone, inst.stdout)
	drain(inst.stderrDone, inst.stderrFile)
	inst.mu.Lock()
	inst.dead = true
	pend := inst.pending
	inst.pending = nil
	note := inst.killNote
	inst.mu.Unlock()
	status := inst.status
	if note != "" {
		status += " (" + note + ")"
	}
	reason := fmt.Sprintf("verifier exited: %s; stderr: %s", status, inst.stderr.quote())
	for _, p := range pend {
		p.timer.Stop()
		p.call.finish(failed("%s", reason))
	}
	select {
	case <-inst.gone:
	default:
		close(inst.gone)
	}
	if inst.hello.Protocol != "" {
		<-inst.writerDone // started only after the handshake
	}
	inst.stdin.Close()
	return reason
}

func (inst *instance) answeredAny() bool {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return inst.answered > 0
}

// drain waits, at most reapGrace, for a reader of f to reach the end (a
// child of the plug-in may hold the pipe open), then closes f.
func drain(done chan struct{}, f *os.File) {
	timer := time.NewTimer(reapGrace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		f.Close()
		<-done
	}
	f.Close()
}

// tail keeps the last stderrKeep bytes a plug-in wrote on stderr.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (s *tail) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, b...)
	if over := len(s.buf) - stderrKeep; over > 0 {
		s.buf = append(s.buf[:0], s.buf[over:]...)
	}
	return len(b), nil
}

func (inst *instance) readStderr() {
	defer close(inst.stderrDone)
	io.Copy(inst.stderr, inst.stderrFile)
}

// quote is the last lines of stderr for a reason, credentials in URLs
// removed; "(empty)" when there is none.
func (s *tail) quote() string {
	s.mu.Lock()
	text := string(s.buf)
	s.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > stderrLines {
		lines = lines[len(lines)-stderrLines:]
	}
	q := strings.Join(lines, " | ")
	if len(q) > stderrQuote {
		q = "..." + strings.ToValidUTF8(q[len(q)-stderrQuote:], "")
	}
	if q == "" {
		return "(empty)"
	}
	return redact.Text(q)
}
