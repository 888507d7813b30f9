package execute_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redraft/redraft/rewards/execute"
)

// newSandbox returns a sandbox, or skips the test when none can be made here;
// under REDRAFT_REQUIRE_SANDBOX=1 (scripts/test.sh, CI) that is a failure.
func newSandbox(t testing.TB, opts execute.Options) *execute.Sandbox {
	t.Helper()
	s, err := execute.New(opts)
	if err != nil {
		if errors.Is(err, execute.ErrUnavailable) && os.Getenv("REDRAFT_REQUIRE_SANDBOX") != "1" {
			t.Skipf("SKIPPING: no sandbox on this machine (set REDRAFT_REQUIRE_SANDBOX=1 to fail instead): %v", err)
		}
		t.Fatal(err)
	}
	return s
}

const python = "/usr/bin/python3"

func py(src string) execute.Spec {
	return execute.Spec{Argv: []string{python, "main.py"}, Files: []execute.File{{Name: "main.py", Data: []byte(src)}}}
}

// TestHostilePrograms runs programs that attack the host, each of which must
// end within its limits with the reason stated, leaving the host as it was.
func TestHostilePrograms(t *testing.T) {
	s := newSandbox(t, execute.Options{Limits: execute.Limits{Wall: 3 * time.Second, CPU: 2 * time.Second,
		Memory: 256 << 20, Procs: 32, FileSize: 1 << 20, Scratch: 8 << 20, Output: 4 << 10, OutputKill: 8 << 20}})

	dir := t.TempDir()
	canary := filepath.Join(dir, "canary")
	if err := os.WriteFile(canary, []byte("intact"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	const secret = "sk-redraft-canary-4f1c9e"
	t.Setenv("OPENAI_API_KEY", secret)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	marker := fmt.Sprintf("redraft-hostile-%d", time.Now().UnixNano())

	cases := []struct {
		name, src string
		maxWall   time.Duration
		check     func(t *testing.T, r execute.Result)
	}{
		{"fork bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", 4 * time.Second,
			func(t *testing.T, r execute.Result) {
				if r.Reason != "timeout" && r.Reason != "cpu_time" {
					t.Errorf("reason %q, want timeout or cpu_time", r.Reason)
				}
			}},
		{"fork count is bounded", "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n        n += 1\nexcept OSError as e:\n    print(n, e.errno)\n", 4 * time.Second,
			func(t *testing.T, r execute.Result) {
				var n, errno int
				if _, err := fmt.Sscan(string(r.Stdout), &n, &errno); err != nil || n >= 32 || errno != 11 {
					t.Errorf("forks %d errno %d (%v), want fewer than 32 and EAGAIN; stdout %q", n, errno, err, r.Stdout)
				}
				if r.Reason != "ok" {
					t.Errorf("reason %q, want ok (the program exits once fork fails)", r.Reason)
				}
			}},
		{"memory bomb", "x = []\nwhile True:\n    x.append(bytearray(50 << 20))\n", 4 * time.Second,
			func(t *testing.T, r execute.Result) {
				if r.Reason != "exit" || !bytes.Contains(r.Stderr, []byte("MemoryError")) {
					t.Errorf("reason %q stderr %q, want exit with MemoryError", r.Reason, r.Stderr)
				}
			}},
		{"one huge allocation", "x = bytearray(8 << 30)\n", 4 * time.Second,
			func(t *testing.T, r execute.Result) {
				if !bytes.Contains(r.Stderr, []byte("MemoryError")) {
					t.Errorf("stderr %q, want MemoryError", r.Stderr)
				}
			}},
		{"busy loop", "while True:\n    pass\n", 4 * time.Second,
			func(t *testing.T, r execute.Result) {
				if r.Reason != "cpu_time" && r.Reason != "timeout" {
					t.Errorf("reason %q, want cpu_time", r.Reason)
				}
			}},
		{"sleeping loop", "import time\nwhile True:\n    time.sleep(0.1)\n", 4 * time.Second,
			func(t *testing.T, r execute.Result) {
				if r.Reason != "timeout" {
					t.Errorf("reason %q, want timeout", r.Reason)
				}
			}},
		{"write outside the scratch directory", fmt.Sprintf(`import os
res = []
for p in [%q, "/usr/redraft-canary", "/etc/redraft-canary", "/redraft-canary", "/proc/redraft-canary"]:
    try:
        with open(p, "w") as f:
            f.write("owned")
        res.append("WROTE " + p)
    except OSError as e:
        res.append("refused " + p)
try:
    os.remove(%q)
    res.append("REMOVED")
except OSError:
    res.append("refused remove")
open("/tmp/inside", "w").write("scratch is writable")
res.append(open("/tmp/inside").read())
print("\n".join(res))
`, canary, canary), 4 * time.Second,
			func(t *testing.T, r execute.Result) {
				if bytes.Contains(r.Stdout, []byte("WROTE")) || bytes.Contains(r.Stdout, []byte("REMOVED")) {
					t.Errorf("a write outside the scratch directory succeeded: %s", r.Stdout)
				}
				if !bytes.Contains(r.Stdout, []byte("scratch is writable")) {
					t.Errorf("the scratch directory is not writable: %s %s", r.Stdout, r.Stderr)
				}
				for _, p := range []string{"/usr/redraft-canary", "/etc/redraft-canary", "/redraft-canary"} {
					if _, err := os.Stat(p); err == nil {
						t.Errorf("%s exists on the host", p)
					}
				}
			}},
		{"connect to 127.0.0.1", fmt.Sprintf("import socket\ns = socket.socket()\ns.settimeout(2)\ntry:\n    s.connect(('127.0.0.1', %d))\n    print('CONNECTED')\nexcept OSError as e:\n    print('refused', e)\ntry:\n    socket.create_connection(('pypi.org', 443), timeout=2)\n    print('CONNECTED OUT')\nexcept OSError as e:\n    print('refused', e)\n", port), 4 * time.Second,
			func(t *testing.T, r execute.Result) {
				if bytes.Contains(r.Stdout, []byte("CONNECTED")) || !bytes.Contains(r.Stdout, []byte("refused")) {
					t.Errorf("network reachable: %s %s", r.Stdout, r.Stderr)
				}
			}},
		{"read the API key", "import os, glob\nprint(dict(os.environ))\nfor p in glob.glob('/proc/*/environ'):\n    try:\n        print(open(p, 'rb').read())\n    except OSError:\n        pass\n", 4 * time.Second,
			func(t *testing.T, r execute.Result) {
				if bytes.Contains(r.Stdout, []byte(secret)) || bytes.Contains(r.Stdout, []byte("OPENAI_API_KEY")) {
					t.Errorf("the key leaked: %s", r.Stdout)
				}
				if r.Reason != "ok" {
					t.Errorf("reason %q: %s", r.Reason, r.Stderr)
				}
			}},
		{"gigabytes of output", "import sys\nb = b'x' * (1 << 20)\nfor _ in range(4096):\n    sys.stdout.buffer.write(b)\n    sys.stderr.buffer.write(b)\n", 4 * time.Second,
			func(t *testing.T, r execute.Result) {
				if r.Reason != "output_limit" || !r.StdoutTruncated || len(r.Stdout) != 4<<10 || len(r.Stderr) > 4<<10 {
					t.Errorf("reason %q truncated %v kept %d/%d bytes", r.Reason, r.StdoutTruncated, len(r.Stdout), len(r.Stderr))
				}
			}},
		{"child ignores SIGTERM", fmt.Sprintf("import os, signal, time\nif os.fork() == 0:\n    os.setsid()\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    while True:\n        time.sleep(1)  # %s\nelse:\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    time.sleep(60)\n", marker), 4 * time.Second,
			func(t *testing.T, r execute.Result) {
				if r.Reason != "timeout" {
					t.Errorf("reason %q, want timeout", r.Reason)
				}
			}},
		{"orphan outlives its parent", fmt.Sprintf("import os, signal, time, sys\nif os.fork() == 0:\n    os.setsid()\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    sys.argv.append(%q)\n    while True:\n        time.sleep(1)\nprint('parent done')\n", marker), 2 * time.Second,
			func(t *testing.T, r execute.Result) {
				if r.Reason != "ok" {
					t.Errorf("reason %q, want ok", r.Reason)
				}
			}},
		{"flood the scratch disk", "n = 0\ntry:\n    while True:\n        with open('/tmp/f%d' % n, 'wb') as f:\n            f.write(b'x' * (1 << 20))\n        n += 1\nexcept OSError as e:\n    print(n, e)\n    raise\n", 4 * time.Second,
			func(t *testing.T, r execute.Result) {
				if r.Reason != "exit" && r.Reason != "file_size" {
					t.Errorf("reason %q, want exit (ENOSPC or EFBIG): %s", r.Reason, r.Stderr)
				}
			}},
		{"one file over the size limit", "open('/tmp/big', 'wb').write(b'x' * (2 << 20))\n", 4 * time.Second,
			func(t *testing.T, r execute.Result) {
				if (r.Reason != "exit" || !bytes.Contains(r.Stderr, []byte("File too large"))) && r.Reason != "file_size" {
					t.Errorf("reason %q stderr %q, want File too large", r.Reason, r.Stderr)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := s.Run(context.Background(), py(c.src))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("reason %s exit %d signal %q wall %v stdout %dB stderr %dB %.80q", r.Reason, r.ExitCode, r.Signal, r.Wall.Round(time.Millisecond), r.StdoutBytes, r.StderrBytes, r.Stderr)
			if r.Wall > c.maxWall {
				t.Errorf("ran %v, limit %v", r.Wall, c.maxWall)
			}
			c.check(t, r)
		})
	}

	if b, err := os.ReadFile(canary); err != nil || string(b) != "intact" {
		t.Errorf("canary %q, %v", b, err)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the listener on 127.0.0.1 accepted %d connections", n)
	}
	// No process of any hostile program is left on the host.
	time.Sleep(200 * time.Millisecond)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(marker)) {
			t.Errorf("a sandboxed process outlived its run: %s %q", p, b)
		}
	}
	// The pipeline is unharmed: a plain program still runs.
	r, err := s.Run(context.Background(), py("print(6*7)\n"))
	if err != nil || r.Reason != "ok" || strings.TrimSpace(string(r.Stdout)) != "42" {
		t.Errorf("after the hostile programs: %+v %v", r, err)
	}
}

// TestRefusesWithoutSandbox: without bwrap, New refuses, naming the opt-out;
// with the opt-out, programs run (unisolated) under the same limits.
func TestRefusesWithoutSandbox(t *testing.T) {
	_, err := execute.New(execute.Options{Bwrap: "/nonexistent/bwrap"})
	if !errors.Is(err, execute.ErrUnavailable) || !strings.Contains(err.Error(), "apt-get install bubblewrap") {
		t.Fatalf("err %v, want ErrUnavailable naming the package", err)
	}
	s, err := execute.New(execute.Options{Bwrap: "/nonexistent/bwrap", UnsafeNoSandbox: true,
		Limits: execute.Limits{Wall: 2 * time.Second, CPU: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Sandboxed() {
		t.Error("Sandboxed() under UnsafeNoSandbox")
	}
	t.Setenv("OPENAI_API_KEY", "sk-unsafe-canary")
	r, err := s.Run(context.Background(), py("import os\nprint(open('main.py').read().startswith('import os'), 'OPENAI_API_KEY' in os.environ)\n"))
	if err != nil || r.Reason != "ok" || strings.TrimSpace(string(r.Stdout)) != "True False" || r.Sandboxed {
		t.Errorf("%+v %v", r, err)
	}
	r, err = s.Run(context.Background(), py("while True:\n    pass\n"))
	if err != nil || r.Reason != "cpu_time" {
		t.Errorf("busy loop without the sandbox: %s %v", r.Reason, err)
	}
}
