package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/redraft/redraft/export"
)

// cmdVersion prints the build that runs: the module version with the VCS
// revision it was built from (as manifests record it), the Go version and
// the platform.
func cmdVersion(args []string, stdout io.Writer) error {
	fs := newFlagSet("version", "", versionAbout, stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("version takes no arguments, got %q", fs.Arg(0))}
	}
	fmt.Fprintf(stdout, "redraft %s\n%s %s/%s\n", export.CodeVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
