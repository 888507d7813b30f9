//go:build !linux

package tmpfs

import "errors"

var errNoTmpfs = errors.New("mounting a tmpfs needs Linux")

func mount(string, int64) error  { return errNoTmpfs }
func resize(string, int64) error { return errNoTmpfs }
func unmount(string) error       { return errNoTmpfs }
