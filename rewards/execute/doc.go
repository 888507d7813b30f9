// Package execute runs untrusted programs (model-written code) in a sandbox
// made with bubblewrap (bwrap, Debian package bubblewrap) and Linux rlimits.
//
// # Guarantees
//
// A program run by a Sandbox:
//
//   - sees the host read-only and only in part: /usr, the top-level
//     /bin, /sbin, /lib* (recreated as symlinks into /usr on a merged-/usr
//     system, bound read-only otherwise), Options.ReadOnly, and fresh /proc
//     and /dev. /etc, /home, /root, /var, the host's /tmp and every other
//     path do not exist in it;
//   - can write only to /tmp, its working directory: a tmpfs of
//     Limits.Scratch bytes that is new for every run and vanishes with it.
//     The sandbox's root is remounted read-only, so nothing else, in memory
//     or on disk, is writable;
//   - has no network: a network namespace of its own whose only interface
//     is its own loopback, so neither the outside nor the host's 127.0.0.1
//     can be reached;
//   - has new user, PID, IPC, UTS and cgroup namespaces, a new session
//     (no controlling terminal) and no capabilities. When redraft runs as
//     root, bwrap itself runs as uid/gid 65534 (nobody): root is exempt
//     from RLIMIT_NPROC, so a sandbox of root's could fork without bound;
//   - gets an empty environment except PATH, HOME=/tmp, LANG=C.UTF-8 and
//     PYTHONDONTWRITEBYTECODE=1: no API key or other variable of the host's
//     reaches it, and the host's processes (and their /proc/N/environ) are
//     invisible in its PID namespace;
//   - runs under rlimits set by a /bin/sh wrapper inside the sandbox before
//     it execs the program: RLIMIT_CPU (SIGXCPU at Limits.CPU, SIGKILL one
//     second later), RLIMIT_AS (Limits.Memory per process; Python raises
//     MemoryError), RLIMIT_NPROC (Limits.Procs processes of the sandbox's
//     user namespace; a fork bomb gets EAGAIN), RLIMIT_FSIZE
//     (Limits.FileSize; Python gets EFBIG), RLIMIT_NOFILE and no core
//     dumps;
//   - is killed, with every process it started, at Limits.Wall: bwrap is
//     killed with SIGKILL (its process group), its PID-namespace init dies
//     with it (--die-with-parent) and the kernel kills everything left in
//     the namespace, including children that ignore SIGTERM or left the
//     session. A program whose main process exits takes its orphans with it
//     the same way;
//   - has its stdout and stderr read concurrently: the first Limits.Output
//     bytes of each are kept, everything is counted, the truncation is
//     recorded, and at Limits.OutputKill bytes in all the sandbox is killed
//     (reason output_limit). Memory held per run is bounded by these caps.
//
// Files are handed in through pipes (bwrap --file), not through the host's
// disk. A program may write a report on file descriptor 3 (ReportFD); it
// comes back in Result.Report, apart from the program's own output.
//
// # Reasons
//
// Every started program ends in a Result whose Reason is one of: ok (exit
// status 0), exit (non-zero status), cpu_time (SIGXCPU), file_size (SIGXFSZ),
// signal (another signal; Result.Signal names it), timeout (the wall clock),
// output_limit, canceled (the caller's context). A program killed by signal
// N through bwrap shows exit status 128+N, which is read back as that signal.
//
// # Availability and the opt-out
//
// New runs a probe program. When bwrap is missing or cannot create its
// namespaces (a container without user namespaces, for example), New
// returns an error wrapping ErrUnavailable that says how to install it, and
// nothing runs. Options.UnsafeNoSandbox (the CLI's --unsafe-no-sandbox)
// runs programs directly instead: same rlimits, empty environment, wall
// clock and output caps, a temporary working directory, but the host's
// files and network are reachable. It is for trusted code only.
//
// # Concurrency
//
// A Sandbox runs at most Options.Slots programs at once (default: the
// number of CPUs), a limit of its own, apart from any network limit; Run
// waits for a slot (Result.Queued) and gives up when its context ends.
//
// # Defaults
//
// DefaultLimits: wall 10 s, CPU 10 s, address space 1 GiB, 64 processes,
// files of 16 MiB, 256 open files, a 64 MiB scratch tmpfs, 64 KiB of each
// output stream kept, killed at 16 MiB of output, 4 MiB of report kept.
package execute
