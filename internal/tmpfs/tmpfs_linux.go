//go:build linux

package tmpfs

import (
	"fmt"
	"syscall"
)

func mount(dir string, size int64) error {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		return fmt.Errorf("mount -t tmpfs -o size=%d tmpfs %s: %w", size, dir, err)
	}
	return nil
}

func resize(dir string, size int64) error {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, fmt.Sprintf("size=%d", size)); err != nil {
		return fmt.Errorf("mount -o remount,size=%d %s: %w", size, dir, err)
	}
	return nil
}

func unmount(dir string) error { return syscall.Unmount(dir, 0) }
